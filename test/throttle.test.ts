// Throughput limits hold at every level at once, counted in segments: a backlog drains at the
// limit and never bursts past it. The clock is manual, so the test counts submits per second
// of the platform's own time, as the carrier would.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('throughput limits', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  /** Runs the platform for `ms` of clock time in 10 ms steps; returns submit times by reference. */
  async function run(ms: number) {
    const start = clock.now();
    while (clock.now() - start < ms) {
      await env.p.runDue();
      clock.advance(10);
    }
  }

  async function submitsPerSecond(ids: string[], from: number) {
    const rows = await env.p.storage.db.selectFrom('simulator_messages').select(['reference', 'created_at']).where('reference', 'in', ids).execute();
    const perSecond = new Map<number, number>();
    for (const r of rows) {
      const s = Math.floor((r.created_at - from) / 1000);
      perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
    }
    return { total: rows.length, perSecond };
  }

  test('a sender limited to 5 messages/s sends a backlog of 20 at 5 per second', async () => {
    const sender = await env.req('POST', '/v1/senders', { body: { address: '+1 415 555 0150', throughput: 5 } });
    assert.equal(sender.statusCode, 201);
    const from = clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await env.req('POST', '/v1/messages', { body: { to: sim(i % 10), body: `paced ${i}`, from: '+14155550150' } })).json().id);
    await run(2000);
    const mid = await submitsPerSecond(ids, from);
    assert.ok(mid.total >= 10 && mid.total <= 11, `about 10 sent in 2 s, got ${mid.total}`);
    for (const [, n] of mid.perSecond) assert.ok(n <= 5, `at most 5 in any second, got ${n}`);
    await run(2500);
    const all = await submitsPerSecond(ids, from);
    assert.equal(all.total, 20);
    for (const [, n] of all.perSecond) assert.ok(n <= 5, `at most 5 in any second, got ${n}`);
    const attempts = await env.p.storage.db.selectFrom('messages').select('attempts').where('id', 'in', ids).execute();
    assert.ok(attempts.every((a) => a.attempts === 1), 'waiting for a slot is not an attempt');
  });

  test('limits count segments: 2-segment messages under 10 segments/s go 5 per second', async () => {
    await env.req('POST', '/v1/senders', { body: { address: '+1 415 555 0151', throughput: 10 } });
    const from = clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push((await env.req('POST', '/v1/messages', { body: { to: sim(i), body: 'x'.repeat(200), from: '+14155550151' } })).json().id);
    await run(1000);
    const got = await submitsPerSecond(ids, from);
    assert.ok(got.total >= 5 && got.total <= 6, `5 two-segment messages in the first second, got ${got.total}`);
  });

  test('a connector limit and an account limit hold at the same time as a sender limit', async () => {
    const conn = (await env.req('POST', '/v1/connectors', { body: { name: 'Slow carrier', type: 'simulator', config: { throughput: 4 } } })).json();
    await env.req('POST', '/v1/routes', { body: { priority: 1, filters: { prefix: '+1512' }, connector_id: conn.id } });
    const from = clock.now();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(i, '512'), body: `connector limit ${i}` } })).json().id);
    await run(1000);
    let got = await submitsPerSecond(ids, from);
    assert.ok(got.total >= 4 && got.total <= 5, `the connector's 4/s holds, got ${got.total}`);

    // Now the account is limited to 1/s: it is the tighter limit.
    await env.p.storage.db.updateTable('accounts').set({ settings: JSON.stringify({ throughput: 1 }) }).where('id', '=', env.accountId).execute();
    env.p.throttle.invalidate();
    const from2 = clock.now();
    const more: string[] = [];
    for (let i = 0; i < 4; i++) more.push((await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(i, '512'), body: `account limit ${i}` } })).json().id);
    await run(2000);
    got = await submitsPerSecond(more, from2);
    assert.ok(got.total <= 3, `the account's 1/s holds, got ${got.total} in 2 s`);
    await env.p.storage.db.updateTable('accounts').set({ settings: '{}' }).where('id', '=', env.accountId).execute();
    env.p.throttle.invalidate();
  });
});
