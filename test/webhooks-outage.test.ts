// Issue 3's outage scenario: the receiver is down while 1,000 messages flow, for several rounds of
// the retry schedule (5 s, 30 s, 2 min on a manual clock), then comes back. It must get every event
// of every message, none missing, in order per message; duplicates are allowed and counted.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

/** runDue until nothing is left to do now (bounded). */
async function drain(env: TestEnv, maxPasses = 2000): Promise<number> {
  let passes = 0;
  while (passes < maxPasses) {
    passes++;
    if ((await env.p.runDue()) === 0) break;
  }
  return passes;
}

describe('a receiver down for several retry rounds while 1,000 messages flow', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  const rx = new Receiver();
  let endpointId = '';
  before(async () => {
    env = await testEnv({ clock });
    await rx.start();
    const ep = (await env.req('POST', '/v1/webhooks', { body: { url: rx.url, events: ['message.queued', 'message.sent', 'message.delivered'] } })).json();
    rx.secrets = [ep.secret];
    endpointId = ep.id;
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  // A few seconds on an idle machine; the generous timeout is for a loaded one (shared CI cores).
  test('every event of every message arrives after the receiver is back, in order per message', { timeout: 300_000 }, async (t) => {
    await rx.stop();
    const t0 = Date.now();
    const messages = Array.from({ length: 1000 }, (_, i) => ({ to: sim(i % 10, ['202', '312', '646', '415'][i % 4]), body: `outage ${i}` }));
    const res = await env.req('POST', '/v1/messages/batch', { body: { messages } });
    assert.equal(res.statusCode, 200, res.body);
    const ids: string[] = res.json().data.map((d: { message: { id: string } }) => d.message.id);
    assert.equal(ids.length, 1000);

    // Down for a minute of clock time: the rounds at 0 s, ~5 s and ~35 s are all refused.
    const downFor = 60_000;
    for (let elapsed = 0; elapsed < downFor; elapsed += 5000) {
      await drain(env);
      clock.advance(5000);
    }
    await drain(env);
    assert.equal(rx.hits, 0);
    const first = (await env.req('GET', `/v1/webhooks/${endpointId}/deliveries?message_id=${ids[0]}`)).json().data;
    const failing = first.find((d: { event_type: string }) => d.event_type === 'message.queued');
    assert.equal(failing.status, 'pending');
    // The later events of the message wait behind it, unattempted.
    for (const d of first.filter((x: { event_type: string }) => x.event_type !== 'message.queued')) assert.equal(d.attempts.length, 0);
    assert.ok(failing.attempts.length >= 3, `several retry rounds while down (got ${failing.attempts.length})`);
    assert.match(failing.attempts[0].error, /ECONNREFUSED/);

    const downMs = Date.now() - t0;
    await rx.start();
    // The next round is due ~2 min after the last refusal. From here the worker runs its own loop
    // (as in production), on the manual clock.
    clock.advance(150_000);
    env.p.webhooks.worker.start();
    try {
      await eventually(async () => rx.perMessage().order.size === 1000 && [...rx.perMessage().order.values()].every((l) => l.length === 3), 240_000, 'every event');
      // The receiver has the last request a moment before the worker records its answer.
      await eventually(async () => (await env.req('GET', `/v1/webhooks/${endpointId}/deliveries?status=pending`)).json().data.length === 0, 60_000, 'no delivery left pending');
    } finally {
      await env.p.webhooks.worker.stop();
    }

    const { order, duplicates } = rx.perMessage();
    let complete = 0;
    for (const id of ids) {
      assert.deepEqual(order.get(id), ['message.queued', 'message.sent', 'message.delivered'], `events of ${id}`);
      complete++;
    }
    assert.equal(complete, 1000);
    assert.equal(rx.badSignatures, 0);
    const summary = `outage (${Math.round(downMs / 1000)} s down phase, ${Math.round((Date.now() - t0 - downMs) / 1000)} s recovery, wall time): 1000 messages, ${rx.received.length} requests received, ${rx.received.length - duplicates} distinct events, ${duplicates} duplicates, 0 missing, 0 out of order`;
    t.diagnostic(summary);
    console.log(`# ${summary}`);
    const pending = (await env.req('GET', `/v1/webhooks/${endpointId}/deliveries?status=pending`)).json().data;
    assert.equal(pending.length, 0);
  });
});
