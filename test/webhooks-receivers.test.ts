// Receivers that misbehave — hang, answer 500, stream 50 MB, close the socket — are retried on
// schedule, hold no worker, keep memory flat, and never delay a healthy endpoint's deliveries.
// Real workers on the real clock, with a short timeout and schedule.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { eventually, testEnv, type TestEnv } from './helpers.ts';
import { Receiver, type Behaviour } from './webhook-receiver.ts';

describe('hostile receivers', () => {
  let env: TestEnv;
  const bad = new Map<Behaviour, { rx: Receiver; id: string }>();
  const good = new Receiver();
  before(async () => {
    env = await testEnv({ workers: true, config: { SWITCHBOARD_WEBHOOK_TIMEOUT_MS: 1000, SWITCHBOARD_WEBHOOK_SCHEDULE: '300ms', SWITCHBOARD_WEBHOOK_RETRY_WINDOW: '1h' } });
    for (const behaviour of ['hang', 'error500', 'huge', 'close'] as Behaviour[]) {
      const rx = await new Receiver().start();
      rx.behaviour = behaviour;
      const ep = (await env.req('POST', '/v1/webhooks', { body: { url: rx.url } })).json();
      bad.set(behaviour, { rx, id: ep.id });
    }
    await good.start();
    good.secrets = [(await env.req('POST', '/v1/webhooks', { body: { url: good.url } })).json().secret];
  });
  after(async () => {
    await env.close();
    await good.stop();
    for (const { rx } of bad.values()) await rx.stop();
  });

  test('the healthy endpoint gets everything at once; the others are retried, capped and cut off', async () => {
    const heapBefore = process.memoryUsage().heapUsed;
    const ids: string[] = [];
    const started = Date.now();
    for (let i = 0; i < 5; i++) {
      const res = await env.req('POST', '/v1/messages', { body: { to: `+1 415 555 26${70 + i}`, body: `m${i}` } });
      ids.push(res.json().id);
    }
    await eventually(async () => ids.every((id) => good.perMessage().order.get(id)?.length === 3), 8000, 'the healthy receiver to get 15 events');
    const tookMs = Date.now() - started;
    for (const id of ids) assert.deepEqual(good.perMessage().order.get(id), ['message.queued', 'message.sent', 'message.delivered']);
    assert.equal(good.badSignatures, 0);

    // Let the hostile ones go through a few rounds (300 ms apart, 1 s timeout).
    await eventually(async () => {
      for (const { id } of bad.values()) {
        const log = (await env.req('GET', `/v1/webhooks/${id}/deliveries?status=pending&limit=200`)).json().data;
        const tried = log.filter((d: { attempts: unknown[] }) => d.attempts.length >= 3);
        if (tried.length === 0) return false;
      }
      return true;
    }, 20_000, 'three attempts on every hostile endpoint');

    const logOf = async (b: Behaviour) => (await env.req('GET', `/v1/webhooks/${bad.get(b)!.id}/deliveries?limit=200`)).json().data.flatMap((d: { attempts: unknown[] }) => d.attempts);
    // Every attempt on a hostile endpoint failed, and each shows its own failure. (Under load an
    // attempt on a slow-but-answering receiver can also time out: the receiver shares this process.)
    type A = { response_status: number | null; error: string | null; response_body: string | null };
    const check = (name: string, list: A[], expected: (a: A) => boolean) => {
      assert.ok(list.length >= 3, `${name}: ${list.length} attempts`);
      assert.ok(list.every((a) => a.response_status === null || a.response_status >= 500), `${name}: every attempt failed`);
      assert.ok(list.every((a) => (a.response_body?.length ?? 0) <= 1024), `${name}: bodies capped at 1 KB`);
      assert.ok(list.some(expected), `${name}: ${JSON.stringify(list[0])}`);
    };
    const hang = await logOf('hang');
    check('hang', hang, (a) => a.response_status === null && /no answer within 1000 ms/.test(a.error ?? ''));
    check('error500', await logOf('error500'), (a) => a.response_status === 500 && a.response_body?.length === 1024);
    const huge = await logOf('huge');
    check('huge', huge, (a) => a.response_status === 500 && a.response_body?.length === 1024);
    check('close', await logOf('close'), (a) => a.response_status === null && /ECONNRESET|socket hang up/.test(a.error ?? ''));

    // Independence, whatever the machine's load: the healthy endpoint got every event of every
    // message, while the hanging endpoint is still stuck on the first event of each message (its
    // later events wait behind it, for that endpoint only).
    // The receiver may have answered a moment before the worker recorded the answer.
    const healthyLog = await eventually(async () => {
      const log = (await env.req('GET', `/v1/webhooks/deliveries?limit=200`)).json().data.filter((d: { url: string }) => d.url === good.url);
      return log.length === 15 && log.every((d: { status: string }) => d.status === 'delivered') ? log : null;
    }, 5000, 'the healthy deliveries to be recorded as delivered');
    assert.equal(healthyLog.length, 15);
    const hangLog = (await env.req('GET', `/v1/webhooks/${bad.get('hang')!.id}/deliveries?limit=200`)).json().data;
    for (const d of hangLog) {
      if (d.event_type === 'message.queued') assert.equal(d.status, 'pending');
      else assert.equal(d.attempts.length, 0, `${d.event_type} waits behind message.queued`);
    }

    if (global.gc) global.gc();
    const heapGrowthMb = (process.memoryUsage().heapUsed - heapBefore) / 1024 / 1024;
    console.log(`# hostile receivers: healthy endpoint got 15 events in ${tookMs} ms; heap growth ${heapGrowthMb.toFixed(1)} MB after ${huge.length} attempts on a 50 MB answer`);
    assert.ok(heapGrowthMb < 60, `heap grew ${heapGrowthMb.toFixed(1)} MB`);
  });
});
