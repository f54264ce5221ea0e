// Operations routes: /healthz, /readyz, /metrics, /openapi.json, /docs (CONTRACT §13).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { DIALECT, eventually, sim, testEnv, type TestEnv } from './helpers.ts';

describe('operations', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ workers: true });
  });
  after(() => env.close());

  test('/healthz and /readyz need no token', async () => {
    const h = await env.req('GET', '/healthz', { token: null });
    assert.equal(h.statusCode, 200);
    assert.deepEqual(h.json(), { status: 'ok' });
    const r = await env.req('GET', '/readyz', { token: null });
    assert.equal(r.statusCode, 200);
    assert.equal(r.json().database, 'ok');
    assert.ok(r.json().connectors.some((c: { id: string; status: string }) => c.id === 'conn_simulator' && c.status === 'up'));
  });

  test('/metrics counts accepted, sent, delivered and failed by class, and the queue depth', async () => {
    const ok = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'metrics' } })).json();
    const bad = (await env.req('POST', '/v1/messages', { body: { to: sim(15, '801'), body: 'metrics' } })).json();
    for (let i = 0; i < 200; i++) {
      const a = (await env.req('GET', `/v1/messages/${ok.id}`)).json().status;
      const b = (await env.req('GET', `/v1/messages/${bad.id}`)).json().status;
      if (a === 'delivered' && b === 'failed') break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const res = await env.req('GET', '/metrics', { token: null });
    assert.equal(res.statusCode, 200);
    assert.match(res.headers['content-type'] as string, /text\/plain/);
    const text = res.body;
    assert.match(text, /switchboard_messages_accepted_total\{channel="sms",mode="test"\} [1-9]/);
    assert.match(text, /switchboard_message_status_total\{status="sent",class=""\} [1-9]/);
    assert.match(text, /switchboard_message_status_total\{status="delivered",class=""\} [1-9]/);
    assert.match(text, /switchboard_message_status_total\{status="failed",class="INVALID_NUMBER"\} 1/);
    assert.match(text, /switchboard_queue_depth\{status="queued"\} \d+/);
  });

  test('/openapi.json is OpenAPI 3.1 and describes every route', async () => {
    const res = await env.req('GET', '/openapi.json', { token: null });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    const paths = Object.keys(doc.paths);
    for (const p of ['/v1/messages', '/v1/messages/batch', '/v1/messages/{id}', '/v1/messages/{id}/events', '/v1/messages/{id}/cancel', '/v1/review', '/v1/review/{id}/resolve', '/oauth/token', '/v1/keys', '/v1/clients', '/v1/consent', '/v1/simulator/inbound', '/v1/connectors', '/v1/connectors/{id}', '/v1/routes', '/v1/senders', '/v1/webhooks', '/v1/webhooks/{id}/deliveries', '/v1/webhooks/deliveries/{id}/retry', '/v1/inbound-routes', '/v1/contacts', '/v1/contacts/import', '/v1/conversations', '/v1/conversations/{id}/messages', '/healthz', '/readyz', '/metrics']) {
      assert.ok(paths.includes(p), `${p} is documented`);
    }
    assert.ok(doc.paths['/v1/messages'].post.requestBody);
    assert.ok(doc.paths['/v1/messages'].post.responses['202']);
  });

  test('/docs serves a readable page with no external requests', async () => {
    const res = await env.req('GET', '/docs', { token: null });
    const page = res.statusCode === 302 ? await env.req('GET', res.headers.location as string, { token: null }) : res;
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /swagger/i);
    assert.ok(!/https?:\/\/(?!localhost)[a-z0-9.-]+\.(com|net|io|org)\//i.test(page.body.replace(/https?:\/\/swagger\.io[^"']*/g, '')), 'no CDN assets');
  });

  test('the landing page links to the docs', async () => {
    const res = await env.req('GET', '/', { token: null });
    assert.equal(res.statusCode, 200);
    assert.match(res.body, /\/docs/);
  });
});

describe('the database server drops the platform’s idle connections', { skip: DIALECT !== 'postgres' && 'PostgreSQL only: SQLite has no server to restart' }, () => {
  test('the process survives (no uncaught error) and the next request gets a new connection', async () => {
    const env = await testEnv({ workers: true });
    const uncaught: Error[] = [];
    const onUncaught = (err: Error) => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    try {
      const first = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'before the restart' } });
      assert.equal(first.statusCode, 202);
      // What a server restart or a failover does to every open connection of ours.
      const dbName = new URL(env.dbPath).pathname.slice(1);
      const admin = new pg.Client({ connectionString: process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test' });
      await admin.connect();
      const killed = await admin.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName]);
      await admin.end();
      assert.ok(killed.rowCount! > 0, 'connections were open to be killed');
      await new Promise((r) => setTimeout(r, 300));
      const after = await eventually(async () => {
        const r = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'after the restart' } });
        return r.statusCode === 202 ? r : null;
      }, 10_000, 'a send after the connections were killed');
      assert.equal(after.json().status, 'queued');
      assert.deepEqual(uncaught.map((e) => e.message), []);
    } finally {
      process.off('uncaughtException', onUncaught);
      await env.close();
    }
  });
});
