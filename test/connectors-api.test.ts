// /v1/connectors, /v1/routes, /v1/senders through HTTP (CONTRACT §9), and failover driven by
// them: a connector that refuses credentials opens its circuit and traffic moves to the next.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('connectors, routes and senders', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  const settle = async () => {
    for (let i = 0; i < 4; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
  };

  test('credentials are sealed, never returned, and not in the database file in plain text', async () => {
    const res = await env.req('POST', '/v1/connectors', { body: { name: 'Carrier A', type: 'simulator', config: { password: 'hunter2-very-secret', latency_ms: 1 } } });
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json();
    assert.match(c.id, /^conn_/);
    assert.deepEqual(c.config, { latency_ms: 1 });
    assert.deepEqual(c.secrets_set, ['password']);
    assert.ok(!res.body.includes('hunter2'));
    const got = (await env.req('GET', `/v1/connectors/${c.id}`)).json();
    assert.ok(!JSON.stringify(got).includes('hunter2'));
    assert.equal(got.state.circuit.state, 'closed');
    // What is stored, below the storage layer's sealing.
    const row = await env.p.storage.db.withoutPlugins().selectFrom('connectors').selectAll().where('id', '=', c.id).executeTakeFirstOrThrow();
    assert.ok(!JSON.stringify(row).includes('hunter2'));
    assert.match(row.secrets!, /^v2:[0-9a-f]{8}:/);
    await env.p.storage.db.selectFrom('connectors').select('id').execute(); // flush nothing; WAL is read below
    const files = [env.dbPath, `${env.dbPath}-wal`].map((f) => {
      try {
        return readFileSync(f);
      } catch {
        return Buffer.alloc(0);
      }
    });
    assert.ok(!files.some((b) => b.includes('hunter2-very-secret')), 'no plaintext credential in the database files');
    // The session still gets the credential.
    assert.equal((await env.p.connectors.row(c.id))!.config.password, 'hunter2-very-secret');
  });

  test('bad connector, route and sender input is refused with the field named', async () => {
    const badType = await env.req('POST', '/v1/connectors', { body: { name: 'x', type: 'carrier-pigeon' } });
    assert.equal(badType.statusCode, 400);
    assert.equal(badType.json().error.details.field, 'type');
    const badFilter = await env.req('POST', '/v1/routes', { body: { priority: 1, filters: { planet: 'mars' }, connector_id: 'conn_simulator' } });
    assert.equal(badFilter.statusCode, 400);
    const noTarget = await env.req('POST', '/v1/routes', { body: { priority: 1 } });
    assert.equal(noTarget.statusCode, 400);
    const badSender = await env.req('POST', '/v1/senders', { body: { address: '12', type: 'long_code' } });
    assert.equal(badSender.statusCode, 422);
    assert.equal(badSender.json().error.code, 'INVALID_NUMBER');
    const other = await env.p.accounts.create('Other');
    const otherKey = await env.key({ accountId: other.id });
    const theirs = (await env.req('POST', '/v1/connectors', { token: otherKey, body: { name: 'theirs', type: 'simulator' } })).json();
    const stolen = await env.req('POST', '/v1/routes', { body: { priority: 1, connector_id: theirs.id } });
    assert.equal(stolen.statusCode, 400, 'another account’s connector cannot be routed to');
    assert.equal((await env.req('GET', `/v1/connectors/${theirs.id}`)).statusCode, 404);
    assert.equal((await env.req('PATCH', '/v1/connectors/conn_simulator', { body: { enabled: false } })).statusCode, 403);
  });

  test('senders: numbers are normalised, short codes and alphanumeric ids checked, duplicates refused', async () => {
    const long = await env.req('POST', '/v1/senders', { body: { address: '(415) 555-0142', type: 'long_code', capabilities: ['sms', 'mms'], throughput: 1 } });
    assert.equal(long.statusCode, 201, long.body);
    assert.equal(long.json().address, '+14155550142');
    assert.equal((await env.req('POST', '/v1/senders', { body: { address: '+14155550142' } })).statusCode, 400);
    assert.equal((await env.req('POST', '/v1/senders', { body: { address: '55123', type: 'short_code' } })).statusCode, 201);
    assert.equal((await env.req('POST', '/v1/senders', { body: { address: 'CLINIC', type: 'alphanumeric' } })).statusCode, 201);
    assert.equal((await env.req('POST', '/v1/senders', { body: { address: '!!', type: 'alphanumeric' } })).statusCode, 400);
    const sent = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'from the new number', from: '+1 415 555 0142' } });
    assert.equal(sent.statusCode, 202);
    assert.equal(sent.json().from, '+14155550142');
    const list = (await env.req('GET', '/v1/senders')).json().data;
    assert.ok(list.some((s: { default: boolean }) => s.default), 'the account’s first sender is its default');
  });

  test('failover: two connectors, the first refusing credentials; traffic goes out on the second and the first’s circuit opens', async () => {
    const bad = (await env.req('POST', '/v1/connectors', { body: { name: 'Primary', type: 'simulator', config: { reject_credentials: true } } })).json();
    const good = (await env.req('POST', '/v1/connectors', { body: { name: 'Secondary', type: 'simulator' } })).json();
    const route = await env.req('POST', '/v1/routes', { body: { priority: 10, name: 'US failover', filters: { country: 'us', channel: 'sms' }, strategy: { type: 'failover', connector_ids: [bad.id, good.id] } } });
    assert.equal(route.statusCode, 201, route.body);
    assert.deepEqual(route.json().filters, { country: ['US'], channel: ['sms'] });
    const table = (await env.req('GET', '/v1/routes')).json().data;
    assert.equal(table[0].id, route.json().id, 'the table reads lowest priority first');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(i, '206'), body: `failover ${i}` } })).json().id);
    await settle();
    for (const id of ids) {
      const m = (await env.req('GET', `/v1/messages/${id}`, { token: env.liveKey })).json();
      assert.equal(m.status, 'delivered');
      assert.equal(m.connector_id, good.id);
    }
    const state = (await env.req('GET', `/v1/connectors/${bad.id}`)).json().state;
    assert.equal(state.circuit.state, 'open');
    assert.match(state.circuit.reason, /credentials/);

    // Fixing the credentials closes the circuit; the primary carries traffic again.
    const fixed = await env.req('PATCH', `/v1/connectors/${bad.id}`, { body: { config: { reject_credentials: null } } });
    assert.equal(fixed.statusCode, 200);
    assert.deepEqual(fixed.json().config, {});
    const again = (await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(0, '206'), body: 'primary again' } })).json();
    await settle();
    assert.equal((await env.req('GET', `/v1/messages/${again.id}`, { token: env.liveKey })).json().connector_id, bad.id);

    assert.equal((await env.req('DELETE', `/v1/connectors/${good.id}`)).statusCode, 400, 'a connector in use cannot be deleted');
    assert.equal((await env.req('DELETE', `/v1/routes/${route.json().id}`)).statusCode, 200);
    assert.equal((await env.req('DELETE', `/v1/connectors/${good.id}`)).statusCode, 200);
  });

  test('a key without connectors:manage cannot touch connectors', async () => {
    const key = await env.key({ scopes: ['messages:send'] });
    const res = await env.req('GET', '/v1/connectors', { token: key });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.details.required_scope, 'connectors:manage');
  });
});
