// POST/GET /v1/messages through HTTP, against a real SQLite file (CONTRACT §4).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';

describe('sending', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ workers: true });
  });
  after(() => env.close());

  test('a message to +1 202 555 0100 is accepted (202), normalised, and reaches delivered', async () => {
    const res = await env.req('POST', '/v1/messages', { body: { to: '+1 202 555 0100', body: 'Hello from the clinic' } });
    assert.equal(res.statusCode, 202);
    const m = res.json();
    assert.match(m.id, /^msg_[0-9a-z]{26}$/);
    assert.equal(m.to, '+12025550100');
    assert.equal(m.direction, 'outbound');
    assert.equal(m.channel, 'sms');
    assert.equal(m.status, 'queued');
    assert.equal(m.encoding, 'GSM-7');
    assert.equal(m.segments, 1);
    assert.equal(m.purpose, 'transactional');
    assert.equal(m.error, null);
    assert.match(m.from, /^\+1\d{3}55501\d\d$/);
    assert.equal(m.account_id, env.accountId);
    const start = Date.now();
    let got;
    while (Date.now() - start < 10_000) {
      got = (await env.req('GET', `/v1/messages/${m.id}`)).json();
      if (got.status === 'delivered') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(got.status, 'delivered');
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    assert.deepEqual(
      events.map((e: { status: string }) => e.status),
      ['queued', 'sending', 'sent', 'delivered'],
    );
    assert.equal(events[3].data.raw.stat, 'DELIVRD', 'the raw receipt is kept on the event');
  });

  for (const alias of ['message', 'text', 'content']) {
    test(`the text may come as ${alias}`, async () => {
      const res = await env.req('POST', '/v1/messages', { body: { to: '(202) 555-0101', [alias]: 'alias works' } });
      assert.equal(res.statusCode, 202, res.body);
      assert.equal(res.json().body, 'alias works');
      assert.equal(res.json().to, '+12025550101');
    });
  }

  test('two aliases at once are refused', async () => {
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'a', text: 'b' } });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'VALIDATION_ERROR');
  });

  test('emoji and right-to-left text are UCS-2, with their segment counts', async () => {
    const emoji = await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'See you soon 😀' } });
    assert.equal(emoji.json().encoding, 'UCS-2');
    assert.equal(emoji.json().segments, 1);
    const arabic = await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'مرحبا '.repeat(20) } });
    assert.equal(arabic.json().encoding, 'UCS-2');
    assert.equal(arabic.json().segments, 2);
    const long = await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'x'.repeat(161) } });
    assert.equal(long.json().encoding, 'GSM-7');
    assert.equal(long.json().segments, 2);
  });

  test('metadata, validity_period and status_callback are kept on the message', async () => {
    const res = await env.req('POST', '/v1/messages', {
      body: { to: sim(2), body: 'm', metadata: { order: '1234' }, validity_period: 600, status_callback: 'http://127.0.0.1:9/cb' },
    });
    const m = res.json();
    assert.deepEqual(m.metadata, { order: '1234' });
    assert.equal(m.status_callback, 'http://127.0.0.1:9/cb');
    assert.equal(Date.parse(m.expires_at) - Date.parse(m.created_at), 600_000);
  });

  test('from must be a sender of the account', async () => {
    const acct = (await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'x' } })).json();
    const ok = await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'x', from: acct.from } });
    assert.equal(ok.statusCode, 202);
    const bad = await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'x', from: '+1 415 555 0199' } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'from');
  });

  test('Idempotency-Key: the same key and body return the first message and send nothing new', async () => {
    const headers = { 'idempotency-key': 'order-77-confirmation' };
    const body = { to: sim(4), body: 'Order 77 confirmed' };
    const first = await env.req('POST', '/v1/messages', { body, headers });
    const second = await env.req('POST', '/v1/messages', { body, headers });
    assert.equal(first.statusCode, 202);
    assert.equal(second.statusCode, 202);
    assert.equal(second.json().id, first.json().id);
    assert.equal(second.headers['idempotent-replayed'], 'true');
    const list = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(sim(4))}`)).json().data;
    assert.equal(list.length, 1);
    const conflict = await env.req('POST', '/v1/messages', { body: { ...body, body: 'different' }, headers });
    assert.equal(conflict.statusCode, 409);
    assert.equal(conflict.json().error.code, 'IDEMPOTENCY_CONFLICT');
  });

  test('concurrent requests with one Idempotency-Key make one message (group commit)', async () => {
    const body = { to: sim(6, '702'), body: 'exactly once' };
    const results = await Promise.all(Array.from({ length: 20 }, () => env.req('POST', '/v1/messages', { body, headers: { 'idempotency-key': 'burst-1' } })));
    assert.ok(results.every((r) => r.statusCode === 202));
    assert.equal(new Set(results.map((r) => r.json().id)).size, 1);
    const list = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(sim(6, '702'))}`)).json().data;
    assert.equal(list.length, 1);
  });

  test('a batch that repeats an idempotency_key: same body replays, a different body conflicts', async () => {
    const res = await env.req('POST', '/v1/messages/batch', {
      body: {
        messages: [
          { to: sim(7, '702'), body: 'one', idempotency_key: 'dup-in-batch' },
          { to: sim(7, '702'), body: 'one', idempotency_key: 'dup-in-batch' },
          { to: sim(7, '702'), body: 'two', idempotency_key: 'dup-in-batch' },
        ],
      },
    });
    const data = res.json().data;
    assert.equal(data[1].message.id, data[0].message.id);
    assert.equal(data[2].error.code, 'IDEMPOTENCY_CONFLICT');
  });

  test('the idempotency key survives a restart', async () => {
    const headers = { 'idempotency-key': 'restart-key' };
    const body = { to: sim(5), body: 'once' };
    const first = (await env.req('POST', '/v1/messages', { body, headers })).json();
    await env.restart();
    const second = (await env.req('POST', '/v1/messages', { body, headers })).json();
    assert.equal(second.id, first.id);
  });

  test('batch: each item succeeds or fails on its own', async () => {
    const res = await env.req('POST', '/v1/messages/batch', {
      body: { messages: [{ to: sim(6), body: 'one' }, { to: '+15550001111', body: 'bad number' }, { to: sim(7), body: 'three', channel: 'fax' }, { to: sim(8), text: 'four' }] },
    });
    assert.equal(res.statusCode, 200);
    const data = res.json().data;
    assert.deepEqual(
      data.map((d: { index: number }) => d.index),
      [0, 1, 2, 3],
    );
    assert.equal(data[0].message.status, 'queued');
    assert.equal(data[1].error.code, 'INVALID_NUMBER');
    assert.equal(data[2].error.code, 'VALIDATION_ERROR');
    assert.equal(data[3].message.body, 'four');
    const tooMany = await env.req('POST', '/v1/messages/batch', { body: { messages: Array.from({ length: 1001 }, () => ({ to: sim(1), body: 'x' })) } });
    assert.equal(tooMany.statusCode, 400);
  });

  test('list: filters, newest first, cursor paging', async () => {
    const to = sim(9, '415');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await env.req('POST', '/v1/messages', { body: { to, body: `page ${i}` } })).json().id);
    const page1 = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}&limit=2`)).json();
    assert.deepEqual(
      page1.data.map((m: { id: string }) => m.id),
      [ids[4], ids[3]],
    );
    assert.ok(page1.next_cursor);
    const page2 = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}&limit=2&cursor=${page1.next_cursor}`)).json();
    assert.deepEqual(
      page2.data.map((m: { id: string }) => m.id),
      [ids[2], ids[1]],
    );
    const page3 = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}&limit=2&cursor=${page2.next_cursor}`)).json();
    assert.deepEqual(
      page3.data.map((m: { id: string }) => m.id),
      [ids[0]],
    );
    assert.equal(page3.next_cursor, null);
    const outbound = (await env.req('GET', `/v1/messages?direction=outbound&channel=sms&to=${encodeURIComponent(to)}`)).json();
    assert.equal(outbound.data.length, 5);
    const none = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}&until=2000-01-01T00:00:00Z`)).json();
    assert.equal(none.data.length, 0);
    const bad = await env.req('GET', '/v1/messages?status=nonsense');
    assert.equal(bad.statusCode, 400);
  });

  test('unknown message ids answer NOT_FOUND', async () => {
    const res = await env.req('GET', '/v1/messages/msg_doesnotexist');
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NOT_FOUND');
  });
});

describe('scheduling, cancel and validity (manual clock)', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  test('send_at holds the message as scheduled until its time, then it goes', async () => {
    const at = new Date(clock.now() + 3600_000).toISOString();
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'later', send_at: at } })).json();
    assert.equal(m.status, 'scheduled');
    assert.equal(m.send_at, at);
    await env.p.runDue();
    assert.equal((await env.req('GET', `/v1/messages/${m.id}`)).json().status, 'scheduled');
    clock.advance(3600_000);
    await env.p.runDue();
    clock.advance(1000);
    await env.p.runDue();
    const done = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    assert.equal(done.status, 'delivered');
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    assert.deepEqual(
      events.map((e: { status: string }) => e.status),
      ['scheduled', 'queued', 'sending', 'sent', 'delivered'],
    );
  });

  test('a scheduled message survives a restart and still wakes on time', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'after restart', send_at: new Date(clock.now() + 60_000).toISOString() } })).json();
    await env.restart();
    clock.advance(59_000);
    await env.p.runDue();
    assert.equal((await env.req('GET', `/v1/messages/${m.id}`)).json().status, 'scheduled', 'not before its time');
    clock.advance(2_000);
    await env.p.runDue();
    assert.notEqual((await env.req('GET', `/v1/messages/${m.id}`)).json().status, 'scheduled', 'woken at its time');
    // The receipt comes back through the restarted simulator connector: on a loaded machine that
    // can take more than one round, so keep rounds going (bounded) until it has.
    const status = await eventually(async () => {
      clock.advance(1000);
      await env.p.runDue();
      const s = (await env.req('GET', `/v1/messages/${m.id}`)).json().status as string;
      return s === 'delivered' ? s : null;
    }, 10_000, 'the delivery receipt after the restart');
    assert.equal(status, 'delivered');
  });

  test('cancel: scheduled and queued messages can be canceled; sent ones cannot', async () => {
    const scheduled = (await env.req('POST', '/v1/messages', { body: { to: sim(2), body: 'cancel me', send_at: new Date(clock.now() + 60_000).toISOString() } })).json();
    const canceled = await env.req('POST', `/v1/messages/${scheduled.id}/cancel`);
    assert.equal(canceled.statusCode, 200);
    assert.equal(canceled.json().status, 'canceled');
    clock.advance(61_000);
    await env.p.runDue();
    assert.equal((await env.req('GET', `/v1/messages/${scheduled.id}`)).json().status, 'canceled', 'a canceled message is never sent');

    const queued = (await env.req('POST', '/v1/messages', { body: { to: sim(2), body: 'cancel me too' } })).json();
    assert.equal((await env.req('POST', `/v1/messages/${queued.id}/cancel`)).json().status, 'canceled');

    const sent = (await env.req('POST', '/v1/messages', { body: { to: sim(2), body: 'too late' } })).json();
    await env.p.runDue();
    const late = await env.req('POST', `/v1/messages/${sent.id}/cancel`);
    assert.equal(late.statusCode, 400);
    assert.equal(late.json().error.details.status, 'sent');
  });

  test('a message that cannot be sent within its validity period expires', async () => {
    // 12 is refused as RATE_LIMITED twice; with a 1-second validity the retry falls outside it.
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(12, '617'), body: 'hurry', validity_period: 1 } })).json();
    await env.p.runDue();
    clock.advance(2000);
    await env.p.runDue();
    const got = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    assert.equal(got.status, 'expired');
    assert.equal(got.error.class, 'RATE_LIMITED');
  });
});
