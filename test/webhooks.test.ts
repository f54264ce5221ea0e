// Webhooks (issue 3, CONTRACT §7): a real receiver on 127.0.0.1 verifies every signature with the
// `standardwebhooks` package and gets each message's events, in order. The clock is manual: the
// test moves it through the retry schedule instead of waiting.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

async function settle(env: TestEnv, clock: ManualClock, steps = 30, stepMs = 1000) {
  for (let i = 0; i < steps; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
}

describe('webhook delivery of message events', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  const rx = new Receiver();
  let endpointId = '';
  before(async () => {
    env = await testEnv({ clock });
    await rx.start();
    const res = await env.req('POST', '/v1/webhooks', { body: { url: rx.url } });
    assert.equal(res.statusCode, 201, res.body);
    const ep = res.json();
    assert.match(ep.secret, /^whsec_/);
    rx.secrets = [ep.secret];
    endpointId = ep.id;
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  test('a normal number: message.queued, message.sent, message.delivered, signed, in order', async () => {
    const res = await env.req('POST', '/v1/messages', { body: { to: '+1 415 555 2671', body: 'hello' } });
    assert.equal(res.statusCode, 202, res.body);
    const id = res.json().id;
    await settle(env, clock);
    assert.deepEqual(rx.perMessage().order.get(id), ['message.queued', 'message.sent', 'message.delivered']);
    assert.equal(rx.badSignatures, 0);
    const last = rx.received.filter((r) => r.messageId === id).at(-1)!;
    assert.equal(last.body.data.status, 'delivered');
    assert.match(String(last.headers['webhook-signature']), /^v1,/);
    const log = (await env.req('GET', `/v1/webhooks/${endpointId}/deliveries?message_id=${id}`)).json().data;
    assert.equal(log.length, 3);
    for (const d of log) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempts.length, 1);
      assert.equal(d.attempts[0].response_status, 204);
      assert.match(d.attempts[0].request_id, /^whreq_/);
      assert.equal(typeof d.attempts[0].latency_ms, 'number');
    }
  });

  const finals: Array<[number, string[]]> = [
    [10, ['message.queued', 'message.sent', 'message.undelivered']],
    [11, ['message.queued', 'message.sent', 'message.undelivered']],
    [12, ['message.queued', 'message.sent', 'message.delivered']],
    [13, ['message.queued', 'message.failed']],
    [14, ['message.queued', 'message.failed']],
    [15, ['message.queued', 'message.failed']],
    [16, ['message.queued', 'message.sent', 'message.delivered']],
    [17, ['message.queued', 'message.sent', 'message.delivered']],
    [18, ['message.queued', 'message.sent', 'message.expired']],
    [19, ['message.queued', 'message.sent', 'message.delivered']],
  ];
  test('simulator numbers 10–19 end with the right event, in order per message', async () => {
    const ids = new Map<number, string>();
    for (const [yy] of finals) {
      const res = await env.req('POST', '/v1/messages', { body: { to: sim(yy, '646'), body: `number ${yy}`, ...(yy === 18 ? { validity_period: 600 } : {}) } });
      assert.equal(res.statusCode, 202, res.body);
      ids.set(yy, res.json().id);
    }
    await settle(env, clock, 40, 1000);
    clock.advance(600_000);
    await settle(env, clock, 3, 1000);
    const { order } = rx.perMessage();
    for (const [yy, expected] of finals) {
      assert.deepEqual(order.get(ids.get(yy)!), expected, `+1 646 555 01${yy}`);
    }
    assert.equal(rx.badSignatures, 0);
    const types = new Set(rx.received.map((r) => r.type));
    assert.ok(types.has('review.created'), 'review.created for 11 and 13');
    assert.ok(types.has('message.received'), 'the replies of 16 and 17');
    assert.ok(types.has('contact.opted_out'), 'the STOP of 16');
  });
});
