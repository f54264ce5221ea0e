// Roles through HTTP (interfaces §3): what each role may do, that a viewer never sees a message
// body in any view, that an agent replies but does not send or create keys, that a sender does
// not manage connectors, and that a person of account A reaches nothing of account B.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ROLE_DEFINITIONS } from '../src/users/roles.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { person } from './people-helpers.ts';

describe('roles', () => {
  let env: TestEnv;
  let conversationId: string;
  let inboundId: string;
  let outboundId: string;
  const BODY = 'Your lab results are ready: glucose 5.4';
  before(async () => {
    env = await testEnv();
    const number = (await env.p.accounts.get(env.accountId)).default_sender!;
    const inbound = await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(3), to: number, body: BODY } });
    assert.equal(inbound.statusCode, 201, inbound.body);
    inboundId = inbound.json().id;
    conversationId = (await env.req('GET', '/v1/conversations')).json().data[0].id;
    outboundId = (await env.req('POST', `/v1/conversations/${conversationId}/messages`, { body: { body: `Re: ${BODY}` } })).json().id;
    await env.p.runDue();
  });
  after(() => env.close());

  test('the role table is the one place roles become scopes', () => {
    assert.deepEqual(ROLE_DEFINITIONS.owner.scopes, ['admin']);
    assert.deepEqual(ROLE_DEFINITIONS.admin.scopes, ['admin']);
    assert.equal(ROLE_DEFINITIONS.owner.manageUsers, true);
    assert.equal(ROLE_DEFINITIONS.admin.manageUsers, false);
    assert.equal(ROLE_DEFINITIONS.viewer.bodies, false);
    assert.ok(ROLE_DEFINITIONS.viewer.scopes.every((s) => s.endsWith(':read')), 'a viewer holds read scopes only');
  });

  test('a viewer reads messages, events and conversations, never a body', async () => {
    const { req, session } = await person(env, 'viewer', { mode: 'test' });
    assert.equal(session.body.bodies, false);
    const check = (m: { body: unknown; media_urls: unknown[]; body_redacted?: boolean }, where: string) => {
      assert.equal(m.body, null, where);
      assert.deepEqual(m.media_urls, [], where);
      assert.equal(m.body_redacted, true, where);
    };
    const one = await req('GET', `/v1/messages/${inboundId}`);
    assert.equal(one.statusCode, 200);
    check(one.json(), 'GET /v1/messages/{id}');
    assert.equal(one.json().from, sim(3), 'everything else is there');
    const list = (await req('GET', '/v1/messages')).json().data;
    assert.ok(list.length >= 2);
    for (const m of list) check(m, 'GET /v1/messages');
    const events = (await req('GET', `/v1/messages/${inboundId}/events`)).json().data;
    assert.equal(events[0].status, 'received');
    assert.equal(events[0].data.raw, undefined, 'the raw provider data is left out');
    assert.equal(events[0].data_redacted, true);
    const convs = (await req('GET', '/v1/conversations')).json().data;
    for (const c of convs) check(c.last_message, 'GET /v1/conversations');
    check((await req('GET', `/v1/conversations/${conversationId}`)).json().last_message, 'GET /v1/conversations/{id}');
    const msgs = (await req('GET', `/v1/conversations/${conversationId}/messages`)).json().data;
    assert.equal(msgs.length, 2);
    for (const m of msgs) check(m, 'GET /v1/conversations/{id}/messages');
    // Whatever the route, no answer to a viewer carries the text.
    for (const url of ['/v1/messages', `/v1/messages/${outboundId}`, `/v1/messages/${outboundId}/events`, '/v1/conversations', `/v1/conversations/${conversationId}/messages`, '/v1/review', '/v1/contacts', '/v1/campaigns']) {
      const res = await req('GET', url);
      assert.equal(res.statusCode, 200, url);
      assert.ok(!res.body.includes('glucose'), `${url} shows no body`);
    }
    // And a viewer writes nothing.
    assert.equal((await req('POST', '/v1/messages', { to: sim(0), body: 'x' })).statusCode, 403);
    assert.equal((await req('POST', `/v1/conversations/${conversationId}/messages`, { body: 'x' })).statusCode, 403);
    assert.equal((await req('POST', '/v1/contacts', { phone: sim(4) })).statusCode, 403);
    // An API key sees the body, as before.
    assert.equal((await env.req('GET', `/v1/messages/${inboundId}`)).json().body, BODY);
  });

  test('a viewer sees consent records and exports without the keyword message they quote', async () => {
    const number = (await env.p.accounts.get(env.accountId)).default_sender!;
    await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(9), to: number, body: ' Stop ' } });
    const { req } = await person(env, 'viewer', { mode: 'test' });
    const history = (await req('GET', `/v1/consent?phone=${encodeURIComponent(sim(9))}`)).json().data;
    assert.equal(history[0].source, 'keyword');
    // A keyword's evidence names the keyword and the message it came in, never its text (which
    // only the message holds, behind the body check), so a viewer and a key see the same record.
    assert.equal(history[0].evidence.keyword, 'STOP');
    assert.match(history[0].evidence.message_id, /^msg_/);
    assert.equal(history[0].evidence.body, undefined);
    assert.equal((await env.req('GET', `/v1/consent?phone=${encodeURIComponent(sim(9))}`)).json().data[0].evidence.body, undefined);
    const csv = await req('GET', `/v1/consent/export?phone=${encodeURIComponent(sim(9))}`);
    assert.equal(csv.statusCode, 200);
    assert.ok(!csv.body.includes('Stop'), csv.body);
    const message = (await req('GET', `/v1/messages/${history[0].evidence.message_id}`)).json();
    assert.equal(message.body, null);
    assert.equal(message.body_redacted, true);
  });

  test('an agent replies in a conversation, but sends nothing else and creates no key', async () => {
    const { req, session } = await person(env, 'agent', { mode: 'test' });
    const reply = await req('POST', `/v1/conversations/${conversationId}/messages`, { body: 'We will call you today.' });
    assert.equal(reply.statusCode, 202, reply.body);
    assert.equal(reply.json().to, sim(3));
    assert.equal((await req('GET', `/v1/conversations/${conversationId}/messages`)).json().data[0].body, 'We will call you today.');
    const key = await req('POST', '/v1/keys', { scopes: ['messages:read'] });
    assert.equal(key.statusCode, 403);
    assert.equal(key.json().error.code, 'FORBIDDEN');
    assert.equal(key.json().error.details.role, 'agent');
    const send = await req('POST', '/v1/messages', { to: sim(5), body: 'arbitrary' });
    assert.equal(send.statusCode, 403);
    assert.equal(send.json().error.details.required_scope, 'messages:send');
    assert.equal((await req('POST', '/v1/messages/batch', { messages: [{ to: sim(5), body: 'x' }] })).statusCode, 403);
    assert.equal((await req('POST', '/v1/campaigns', { name: 'x', audience: { csv: 'phone\n+12025550105' }, body: 'x' })).statusCode, 403);
    assert.equal((await req('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/x' })).statusCode, 403);
    assert.ok(session);
  });

  test('a sender sends and runs campaigns, but does not manage connectors, webhooks or keys', async () => {
    const { req } = await person(env, 'sender', { mode: 'test' });
    assert.equal((await req('POST', '/v1/messages', { to: sim(0), body: 'hello' })).statusCode, 202);
    for (const [method, url, body] of [
      ['POST', '/v1/connectors', { name: 'mine', type: 'simulator' }],
      ['GET', '/v1/connectors', undefined],
      ['POST', '/v1/routes', { priority: 1, connector_id: 'conn_simulator' }],
      ['POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/x' }],
      ['POST', '/v1/keys', { scopes: ['messages:read'] }],
      ['GET', '/v1/audit', undefined],
    ] as const) {
      const res = await req(method, url, body);
      assert.equal(res.statusCode, 403, `${method} ${url}`);
    }
  });

  test('an admin manages connectors and keys; its keys record who made them', async () => {
    const { req, user } = await person(env, 'admin', { mode: 'test' });
    const conn = await req('POST', '/v1/connectors', { name: 'admin-made', type: 'simulator' });
    assert.equal(conn.statusCode, 201, conn.body);
    const key = await req('POST', '/v1/keys', { scopes: ['messages:read'], name: 'from the dashboard' });
    assert.equal(key.statusCode, 201);
    const client = await req('POST', '/v1/clients', { scopes: ['messages:read'] });
    assert.equal(client.statusCode, 201);
    const keys = (await req('GET', '/v1/keys')).json().data;
    assert.equal(keys.find((k: { id: string }) => k.id === key.json().id).created_by, user.id);
    const clients = (await req('GET', '/v1/clients')).json().data;
    assert.equal(clients.find((c: { client_id: string }) => c.client_id === client.json().client_id).created_by, user.id);
    assert.equal((await req('GET', '/v1/users')).statusCode, 403, 'people are the owner’s');
  });

  test('a person of account A reaches nothing of account B: 404, never 200', async () => {
    const other = await env.p.accounts.create('Other clinic');
    const bKey = await env.key({ accountId: other.id });
    const bNumber = (await env.p.accounts.get(other.id)).default_sender!;
    const bInbound = (await env.req('POST', '/v1/simulator/inbound', { token: bKey, body: { from: sim(7), to: bNumber, body: 'B private' } })).json();
    const bConversation = (await env.req('GET', '/v1/conversations', { token: bKey })).json().data[0].id;
    const bContact = (await env.req('POST', '/v1/contacts', { token: bKey, body: { phone: sim(8) } })).json();
    const bKeyId = (await env.req('GET', '/v1/keys', { token: bKey })).json().data[0].id;
    const bUser = await person(env, 'owner', { accountId: other.id, mode: 'test' });
    const bAudit = (await bUser.req('GET', '/v1/audit')).json().data[0].id;
    assert.ok(bAudit);

    const a = await person(env, 'owner', { mode: 'test' });
    for (const [method, url, body] of [
      ['GET', `/v1/messages/${bInbound.id}`, undefined],
      ['GET', `/v1/messages/${bInbound.id}/events`, undefined],
      ['POST', `/v1/messages/${bInbound.id}/cancel`, undefined],
      ['GET', `/v1/conversations/${bConversation}`, undefined],
      ['GET', `/v1/conversations/${bConversation}/messages`, undefined],
      ['POST', `/v1/conversations/${bConversation}/messages`, { body: 'hi' }],
      ['GET', `/v1/contacts/${bContact.id}`, undefined],
      ['PATCH', `/v1/contacts/${bContact.id}`, { name: 'x' }],
      ['DELETE', `/v1/keys/${bKeyId}`, undefined],
      ['PATCH', `/v1/users/${bUser.user.id}`, { role: 'viewer' }],
      ['DELETE', `/v1/users/${bUser.user.id}`, undefined],
      ['GET', `/v1/audit/${bAudit}`, undefined],
    ] as const) {
      const res = await a.req(method, url, body);
      assert.equal(res.statusCode, 404, `${method} ${url}: ${res.body}`);
    }
    const lists = ['/v1/messages', '/v1/conversations', '/v1/contacts', '/v1/keys', '/v1/users', '/v1/audit'];
    for (const url of lists) {
      const res = await a.req('GET', url);
      assert.equal(res.statusCode, 200, url);
      for (const secret of [bInbound.id, bContact.id, bKeyId, bUser.user.id, bAudit, other.id]) assert.ok(!res.body.includes(secret), `${url} shows nothing of account B`);
    }
    // B's owner is untouched.
    assert.equal((await bUser.req('GET', '/v1/session')).json().user.role, 'owner');
  });
});
