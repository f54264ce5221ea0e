// The API routes the dashboard added: analytics, the dashboard served at / with its CSP and the
// SPA fallback that leaves the API's own 404s alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
// @ts-expect-error: a plain .mjs script without types
import { buildDashboard } from '../scripts/build-dashboard.mjs';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { person } from './people-helpers.ts';

describe('GET /v1/analytics/messages', () => {
  let env: TestEnv;
  before(async () => {
    await (buildDashboard as (o: { quiet: boolean }) => Promise<boolean>)({ quiet: true });
    env = await testEnv({ workers: true });
  });
  after(async () => {
    await env?.close();
  });

  test('volume, delivery, failures by class and connector, reply and opt-out rates', async () => {
    const ids: string[] = [];
    for (const to of [sim(1), sim(2), sim(15), sim(16)]) {
      const res = await env.req('POST', '/v1/messages', { body: { to, body: 'Hello' } });
      assert.equal(res.statusCode, 202, res.body);
      ids.push(res.json().id);
    }
    await eventually(async () => {
      const st = await Promise.all(ids.map(async (id) => (await env.req('GET', `/v1/messages/${id}`)).json().status));
      return st.every((s) => ['delivered', 'failed', 'undelivered'].includes(s)) ? st : null;
    }, 10_000);
    // sim(16) replies STOP: one inbound message and an opt-out record.
    await eventually(async () => (await env.req('GET', '/v1/analytics/messages?bucket=hour')).json().totals.opt_outs === 1 || null, 10_000);
    const res = await env.req('GET', '/v1/analytics/messages?bucket=hour');
    assert.equal(res.statusCode, 200, res.body);
    const a = res.json();
    assert.equal(a.bucket, 'hour');
    assert.ok(a.buckets.length >= 1);
    assert.ok(a.totals.outbound >= 4, JSON.stringify(a.totals));
    assert.equal(a.totals.delivered, 3);
    assert.equal(a.totals.failed, 1);
    assert.equal(a.totals.inbound, 1);
    assert.deepEqual(a.failures_by_class, [{ error_class: 'INVALID_NUMBER', count: 1 }]);
    assert.equal(a.failures_by_connector.length, 1);
    assert.equal(a.failures_by_connector[0].count, 1);
    assert.equal(a.reply_rate, 1 / a.totals.outbound);
    assert.equal(a.opt_out_rate, 1 / a.totals.outbound);
    const invalid = (await env.req('GET', '/v1/messages?error_class=INVALID_NUMBER')).json().data;
    assert.deepEqual(invalid.map((m: { to: string }) => m.to), [sim(15)]);
    assert.equal((await env.req('GET', '/v1/messages?error_class=NOPE')).statusCode, 400);
    assert.equal(a.buckets.reduce((s: number, b: { outbound: number }) => s + b.outbound, 0), a.totals.outbound);
    // The other mode sees none of it.
    const live = (await env.req('GET', '/v1/analytics/messages', { token: env.liveKey })).json();
    assert.equal(live.totals.outbound, 0);
    // A viewer may read it (no bodies in it).
    const viewer = await person(env, 'viewer', { mode: 'test' });
    assert.equal((await viewer.req('GET', '/v1/analytics/messages?bucket=day')).statusCode, 200);
  });

  test('unread counts per person; POST /v1/conversations/{id}/read resets them', async () => {
    const agent = await person(env, 'agent', { mode: 'test' });
    const other = await person(env, 'agent', { mode: 'test' });
    const from = sim(4, '707');
    for (const body of ['one', 'two']) assert.ok((await env.req('POST', '/v1/simulator/inbound', { body: { from, body } })).statusCode < 300);
    const find = async (req: typeof agent.req) => (await req('GET', '/v1/conversations')).json().data.find((c: { contact: { phone: string } }) => c.contact.phone === from);
    const conv = await eventually(() => find(agent.req));
    assert.equal(conv.unread, 2);
    const read = await agent.req('POST', `/v1/conversations/${conv.id}/read`);
    assert.equal(read.statusCode, 200, read.body);
    assert.equal((await find(agent.req)).unread, 0);
    assert.equal((await find(other.req)).unread, 2, 'read marks are per person');
    assert.ok((await env.req('POST', '/v1/simulator/inbound', { body: { from, body: 'three' } })).statusCode < 300);
    assert.equal((await find(agent.req)).unread, 1);
    // An API key has no read marks: no unread field.
    const byKey = (await env.req('GET', '/v1/conversations')).json().data.find((c: { id: string }) => c.id === conv.id);
    assert.equal(byKey.unread, undefined);
    assert.equal((await agent.req('POST', '/v1/conversations/conv_00000000000000000000000000/read')).statusCode, 404);
    assert.equal((await agent.req('POST', `/v1/conversations/${conv.id}/read`, undefined, { csrf: false })).statusCode, 403);
  });

  test('bad ranges are a VALIDATION_ERROR', async () => {
    for (const q of ['from=yesterday', 'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', 'bucket=week', 'from=2000-01-01T00:00:00Z&bucket=hour']) {
      const res = await env.req('GET', `/v1/analytics/messages?${q}`);
      assert.equal(res.statusCode, 400, q);
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    }
  });

  test('the dashboard at /: the page with its CSP on client paths, the JSON 404 on API paths', async () => {
    for (const path of ['/', '/messages/msg_x', '/inbox']) {
      const res = await env.req('GET', path, { token: null });
      assert.equal(res.statusCode, 200, path);
      assert.match(String(res.headers['content-type']), /text\/html/);
      assert.match(String(res.headers['content-security-policy']), /default-src 'self'/);
    }
    for (const path of ['/v1/nope', '/healthz/x', '/2010-04-01/nope', '/oauth/nope', '/assets/nope.js', '/media/nope']) {
      const res = await env.req('GET', path, { token: null });
      assert.equal(res.statusCode, 404, path);
      assert.equal(res.json().error.code, 'NOT_FOUND', path);
    }
  });
});
