// The send path's invariants: leases, in-doubt attempts after a crash, failover on refused
// credentials, opt-out winning the race with a queued message, receipts before submits.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('dispatcher', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  const get = async (id: string, token = env.testKey) => (await env.req('GET', `/v1/messages/${id}`, { token })).json();
  const settle = async (rounds = 5) => {
    for (let i = 0; i < rounds; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    await env.p.runDue();
  };
  const metric = async (name: string) => {
    const text = await env.p.metrics.registry.metrics();
    return text.split('\n').filter((l) => l.startsWith(name));
  };

  /** Leaves a message as a worker that died mid-attempt would: sending, lease expired. */
  async function crashMidAttempt(id: string) {
    await env.p.storage.db
      .updateTable('messages')
      .set({ status: 'sending', attempts: 1, connector_id: 'conn_simulator', lease_owner: 'worker_dead', lease_expires_at: clock.now() - 1, next_attempt_at: null })
      .where('id', '=', id)
      .execute();
  }

  test('an attempt left in doubt, that never reached the carrier, is resubmitted and delivered', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'in doubt' } })).json();
    await crashMidAttempt(m.id);
    await settle();
    const got = await get(m.id);
    assert.equal(got.status, 'delivered');
    assert.equal(got.attempts, 2);
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    assert.ok(events.some((e: { data: { in_doubt?: boolean } }) => e.data.in_doubt), 'the timeline says it was in doubt');
    assert.ok((await metric('switchboard_in_doubt_attempts_total')).some((l) => l.includes('not_at_carrier') && l.endsWith(' 1')));
  });

  test('an attempt left in doubt that the carrier already has is found by lookup, not sent twice', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'carrier has it' } })).json();
    const connector = (await env.p.connectors.get('conn_simulator'))!;
    // The worker handed it over, the carrier accepted it, and the worker died before recording.
    const accepted = await connector.submit({ reference: m.id, accountId: env.accountId, mode: 'test', channel: 'sms', to: m.to, from: m.from, body: m.body, mediaUrls: [], encoding: 'GSM-7', segments: 1, expiresAt: null, attempt: 1 });
    assert.ok(accepted.ok);
    await crashMidAttempt(m.id);
    await settle();
    const got = await get(m.id);
    assert.equal(got.status, 'delivered');
    assert.equal(got.provider_message_id, accepted.providerMessageId);
    const sub = await env.p.storage.db.selectFrom('simulator_messages').select('submits').where('reference', '=', m.id).executeTakeFirstOrThrow();
    assert.equal(sub.submits, 1, 'the carrier saw one submit');
  });

  test('a live lease is never claimed twice', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(2), body: 'leased' } })).json();
    await env.p.storage.db
      .updateTable('messages')
      .set({ status: 'sending', attempts: 1, connector_id: 'conn_simulator', lease_owner: 'worker_alive', lease_expires_at: clock.now() + 60_000, next_attempt_at: null })
      .where('id', '=', m.id)
      .execute();
    await env.p.runDue();
    const got = await get(m.id);
    assert.equal(got.status, 'sending');
    assert.equal(got.attempts, 1);
  });

  test('opt-out wins the race: a queued message to a number that opts out is canceled, never submitted', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'about to opt out' } })).json();
    const stop = await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(3), body: ' stop ' } });
    assert.equal(stop.statusCode, 201);
    await settle(1);
    const got = await get(m.id);
    assert.equal(got.status, 'canceled');
    assert.equal(got.error.class, 'OPTED_OUT');
    const submitted = await env.p.storage.db.selectFrom('simulator_messages').select('reference').where('reference', '=', m.id).executeTakeFirst();
    assert.equal(submitted, undefined);
    const start = await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(3), body: 'START' } });
    assert.equal(start.statusCode, 201);
    assert.equal((await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'welcome back' } })).statusCode, 202);
    const history = (await env.req('GET', `/v1/consent?phone=${encodeURIComponent(sim(3))}`)).json().data;
    assert.deepEqual(
      history.map((h: { status: string; source: string }) => `${h.status}/${h.source}`),
      ['opted_out/keyword', 'opted_in/keyword'],
    );
  });

  test('a receipt that arrives before the submit is recorded is held, then applied', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(4), body: 'early receipt' } })).json();
    await env.p.receipts.receipt('conn_simulator', { providerMessageId: 'sim_early_1', status: 'delivered', raw: { stat: 'DELIVRD' } });
    const held = await env.p.storage.db.selectFrom('pending_receipts').selectAll().where('provider_message_id', '=', 'sim_early_1').executeTakeFirstOrThrow();
    assert.equal(held.applied_at, null);
    await crashMidAttempt(m.id);
    await env.p.dispatcher.recordOutcome(m.id, 'conn_simulator', { ok: true, providerMessageId: 'sim_early_1' }, {});
    const got = await get(m.id);
    assert.equal(got.status, 'delivered');
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    assert.equal(events.at(-1).data.held_until_submit_recorded, true);
  });

  test('a duplicate or late receipt never moves a message backwards, and is recorded', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(5), body: 'dup receipts' } })).json();
    await settle(2);
    const done = await get(m.id);
    assert.equal(done.status, 'delivered');
    await env.p.receipts.receipt('conn_simulator', { providerMessageId: done.provider_message_id, status: 'undelivered', errorClass: 'UNREACHABLE' });
    await env.p.receipts.receipt('conn_simulator', { providerMessageId: done.provider_message_id, status: 'delivered' });
    const again = await get(m.id);
    assert.equal(again.status, 'delivered');
    assert.equal(again.error, null);
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    assert.equal(events.filter((e: { ignored: boolean }) => e.ignored).length, 2);
  });

  test('a receipt for an unknown provider id is kept for inspection', async () => {
    await env.p.receipts.receipt('conn_simulator', { providerMessageId: 'sim_nobody', status: 'delivered' });
    const kept = await env.p.storage.db.selectFrom('pending_receipts').selectAll().where('provider_message_id', '=', 'sim_nobody').executeTakeFirst();
    assert.ok(kept);
  });

  test('AUTH_FAILED: the connector’s circuit opens and messages fail over to the next connector', async () => {
    const now = clock.now();
    const db = env.p.storage.db;
    await db
      .insertInto('connectors')
      .values([
        { id: 'conn_badcreds', account_id: null, name: 'wrong password', type: 'simulator', config: JSON.stringify({ reject_credentials: true }), enabled: 1, created_at: now, updated_at: now },
        { id: 'conn_backup', account_id: null, name: 'backup', type: 'simulator', config: '{}', enabled: 1, created_at: now, updated_at: now },
      ])
      .execute();
    await db
      .insertInto('routes')
      .values({ id: 'route_failover', account_id: env.accountId, priority: 10, filters: JSON.stringify({ prefix: '+1305' }), connector_id: null, strategy: JSON.stringify({ type: 'failover', connector_ids: ['conn_badcreds', 'conn_backup'] }), created_at: now })
      .execute();
    env.p.router.invalidate();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(i, '305'), body: `failover ${i}` } })).json().id);
    await settle(3);
    for (const id of ids) {
      const got = await get(id, env.liveKey);
      assert.equal(got.status, 'delivered');
      assert.equal(got.connector_id, 'conn_backup');
    }
    assert.equal(env.p.connectors.circuitState('conn_badcreds').state, 'open');
    const first = (await env.req('GET', `/v1/messages/${ids[0]}/events`, { token: env.liveKey })).json().data;
    assert.ok(first.some((e: { data: { error?: { class: string } } }) => e.data.error?.class === 'AUTH_FAILED'));
  });

  test('AUTH_FAILED with no other route: the message waits (queued), then goes when the connector recovers', async () => {
    const db = env.p.storage.db;
    // Only the refusing connector carries +1713 in live mode for this test.
    await db.updateTable('routes').set({ filters: JSON.stringify({ prefix: ['+1202', '+1305', '+1312', '+1415', '+1617'] }) }).where('id', '=', 'route_default').execute();
    await db
      .insertInto('routes')
      .values({ id: 'route_only_bad', account_id: env.accountId, priority: 5, filters: JSON.stringify({ prefix: '+1713' }), connector_id: 'conn_badcreds', strategy: null, created_at: clock.now() })
      .execute();
    env.p.router.invalidate();
    const m = (await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(0, '713'), body: 'waits' } })).json();
    await env.p.runDue();
    clock.advance(31_000); // the circuit half-opens; the next attempt is refused again
    await env.p.runDue();
    let got = await get(m.id, env.liveKey);
    assert.equal(got.status, 'queued');
    assert.equal(got.error.class, 'AUTH_FAILED');
    // The operator fixes the credentials.
    await db.updateTable('connectors').set({ config: '{}' }).where('id', '=', 'conn_badcreds').execute();
    await env.p.connectors.reload('conn_badcreds');
    clock.advance(31_000);
    await settle(2);
    got = await get(m.id, env.liveKey);
    assert.equal(got.status, 'delivered');
    assert.equal(got.connector_id, 'conn_badcreds');
  });
});
