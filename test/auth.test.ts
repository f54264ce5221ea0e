// Authentication, scopes, modes and tenancy through HTTP (CONTRACT §2).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('API keys, OAuth, scopes, modes, tenancy', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  test('a missing, malformed or unknown token answers 401 AUTH_FAILED', async () => {
    for (const token of [null, 'sb_test_unknown', 'not-a-token', 'a.b.c']) {
      const res = await env.req('GET', '/v1/messages', { token });
      assert.equal(res.statusCode, 401, String(token));
      const e = res.json().error;
      assert.equal(e.code, 'AUTH_FAILED');
      assert.equal(e.retryable, false);
      assert.match(e.request_id, /^req_/);
    }
    const raw = await env.app.inject({ method: 'GET', url: '/v1/messages', headers: { authorization: 'Token abc' } });
    assert.equal(raw.statusCode, 401);
  });

  test('a key without the scope a route needs answers 403 FORBIDDEN naming the scope', async () => {
    const readOnly = await env.key({ scopes: ['messages:read'] });
    const res = await env.req('POST', '/v1/messages', { token: readOnly, body: { to: sim(0), body: 'x' } });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error.code, 'FORBIDDEN');
    assert.equal(res.json().error.details.required_scope, 'messages:send');
    assert.equal((await env.req('GET', '/v1/messages', { token: readOnly })).statusCode, 200);
    const sendOnly = await env.key({ scopes: ['messages:send'] });
    assert.equal((await env.req('GET', '/v1/messages', { token: sendOnly })).statusCode, 403);
  });

  test('a revoked key stops working at once', async () => {
    const created = await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'], name: 'temp' } });
    assert.equal(created.statusCode, 201);
    const { id, secret } = created.json();
    assert.match(secret, /^sb_test_/);
    assert.equal((await env.req('GET', '/v1/messages', { token: secret })).statusCode, 200);
    const listed = (await env.req('GET', '/v1/keys')).json().data;
    const entry = listed.find((k: { id: string }) => k.id === id);
    assert.ok(entry);
    assert.equal(entry.secret, undefined, 'a key list never shows secrets');
    assert.equal((await env.req('DELETE', `/v1/keys/${id}`)).statusCode, 200);
    const after = await env.req('GET', '/v1/messages', { token: secret });
    assert.equal(after.statusCode, 401);
    assert.match(after.json().error.message, /revoked/);
  });

  test('secrets are stored only as hashes', async () => {
    const created = (await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'] } })).json();
    const rows = await env.p.storage.db.selectFrom('api_keys').selectAll().execute();
    assert.ok(!JSON.stringify(rows).includes(created.secret));
  });

  test('OAuth client credentials: Basic or form fields; the token carries only the scopes asked for', async () => {
    const client = (await env.req('POST', '/v1/clients', { body: { scopes: ['messages:send', 'messages:read'] } })).json();
    assert.match(client.client_id, /^client_test_/);

    const viaBasic = await env.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&scope=messages%3Aread',
    });
    assert.equal(viaBasic.statusCode, 200, viaBasic.body);
    const tok = viaBasic.json();
    assert.equal(tok.token_type, 'Bearer');
    assert.equal(tok.scope, 'messages:read');
    assert.equal(tok.expires_in, 3600);
    assert.equal((await env.req('GET', '/v1/messages', { token: tok.access_token })).statusCode, 200);
    const denied = await env.req('POST', '/v1/messages', { token: tok.access_token, body: { to: sim(0), body: 'x' } });
    assert.equal(denied.statusCode, 403, 'a token never carries more than it asked for');

    const viaForm = await env.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `grant_type=client_credentials&client_id=${client.client_id}&client_secret=${client.client_secret}`,
    });
    assert.equal(viaForm.statusCode, 200);
    assert.equal(viaForm.json().scope, 'messages:send messages:read');
    const sent = await env.req('POST', '/v1/messages', { token: viaForm.json().access_token, body: { to: sim(0), body: 'via oauth' } });
    assert.equal(sent.statusCode, 202);
    assert.equal(sent.json().mode, 'test');
  });

  test('OAuth: a scope the client does not hold is 400 invalid_scope; a wrong secret is 401', async () => {
    const client = (await env.req('POST', '/v1/clients', { body: { scopes: ['messages:read'] } })).json();
    const res = await env.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials&scope=messages%3Asend',
    });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error.code, 'invalid_scope');
    const wrong = await env.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { authorization: basic(client.client_id, 'nope'), 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'grant_type=client_credentials',
    });
    assert.equal(wrong.statusCode, 401);
    assert.equal(wrong.json().error.code, 'AUTH_FAILED');
    const grant = await env.app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ grant_type: 'password' }) });
    assert.equal(grant.statusCode, 400);
    assert.equal(grant.json().error.details.oauth_error, 'unsupported_grant_type');
  });

  test('an expired access token, or one whose client was revoked, answers 401', async () => {
    const client = (await env.req('POST', '/v1/clients', { body: { scopes: ['messages:read'] } })).json();
    const issue = async () =>
      (
        await env.app.inject({
          method: 'POST',
          url: '/oauth/token',
          headers: { authorization: basic(client.client_id, client.client_secret), 'content-type': 'application/x-www-form-urlencoded' },
          payload: 'grant_type=client_credentials',
        })
      ).json().access_token as string;
    const token = await issue();
    clock.advance(3601_000);
    const expired = await env.req('GET', '/v1/messages', { token });
    assert.equal(expired.statusCode, 401);
    assert.match(expired.json().error.message, /expired/);

    const fresh = await issue();
    assert.equal((await env.req('GET', '/v1/messages', { token: fresh })).statusCode, 200);
    assert.equal((await env.req('DELETE', `/v1/clients/${client.client_id}`)).statusCode, 200);
    assert.equal((await env.req('GET', '/v1/messages', { token: fresh })).statusCode, 401);
  });

  test('test and live modes never see each other’s messages', async () => {
    const testMsg = (await env.req('POST', '/v1/messages', { token: env.testKey, body: { to: sim(0), body: 'test mode' } })).json();
    const liveMsg = (await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(0), body: 'live mode' } })).json();
    assert.equal(testMsg.mode, 'test');
    assert.equal(liveMsg.mode, 'live');
    assert.equal((await env.req('GET', `/v1/messages/${liveMsg.id}`, { token: env.testKey })).statusCode, 404);
    assert.equal((await env.req('GET', `/v1/messages/${testMsg.id}`, { token: env.liveKey })).statusCode, 404);
    const liveList = (await env.req('GET', '/v1/messages?limit=1000', { token: env.liveKey })).json().data;
    assert.ok(liveList.every((m: { mode: string }) => m.mode === 'live'));
  });

  test('a test-mode message only ever reaches a simulator, even when live routes point elsewhere', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'sandbox' } })).json();
    await env.p.runDue();
    const got = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    const connector = await env.p.connectors.row(got.connector_id);
    assert.equal(connector?.type, 'simulator');
  });

  test('account A cannot reach account B’s messages, keys or review items', async () => {
    const other = await env.p.accounts.create('Other clinic');
    const otherKey = await env.key({ accountId: other.id });
    const mine = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'mine' } })).json();
    const theirs = (await env.req('POST', '/v1/messages', { token: otherKey, body: { to: sim(0), body: 'theirs' } })).json();
    assert.equal(theirs.account_id, other.id);
    assert.equal((await env.req('GET', `/v1/messages/${mine.id}`, { token: otherKey })).statusCode, 404);
    assert.equal((await env.req('GET', `/v1/messages/${theirs.id}/events`)).statusCode, 404);
    assert.equal((await env.req('POST', `/v1/messages/${theirs.id}/cancel`)).statusCode, 404);
    const theirList = (await env.req('GET', '/v1/messages?limit=1000', { token: otherKey })).json().data;
    assert.deepEqual(
      theirList.map((m: { id: string }) => m.id),
      [theirs.id],
    );
    const myKeys = (await env.req('GET', '/v1/keys')).json().data.map((k: { id: string }) => k.id);
    const theirKeys = (await env.req('GET', '/v1/keys', { token: otherKey })).json().data.map((k: { id: string }) => k.id);
    assert.ok(!theirKeys.some((id: string) => myKeys.includes(id)));
    assert.equal((await env.req('DELETE', `/v1/keys/${myKeys[0]}`, { token: otherKey })).statusCode, 404);
  });
});
