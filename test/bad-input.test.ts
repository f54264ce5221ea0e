// Bad input gets the right CONTRACT §3 code and leaves nothing behind in the database.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sim, testEnv, type TestEnv } from './helpers.ts';

const TABLES = ['messages', 'message_events', 'outbox', 'idempotency_keys', 'consent_records', 'suppressions'] as const;

describe('bad input', () => {
  let env: TestEnv;
  let slowest = 0;
  before(async () => {
    env = await testEnv();
  });
  after(async () => {
    console.log(`# slowest refusal: ${slowest.toFixed(1)} ms (figure, not an assertion; see BENCHMARKS.md)`);
    await env.close();
  });

  async function counts() {
    const out: Record<string, number> = {};
    for (const t of TABLES) {
      const r = await env.p.storage.db.selectFrom(t).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      out[t] = Number(r.n);
    }
    return out;
  }

  async function refused(code: string, status: number, opts: { body?: unknown; payload?: string; headers?: Record<string, string>; url?: string }) {
    const before = await counts();
    const t0 = performance.now();
    const res = await env.req('POST', opts.url ?? '/v1/messages', {
      body: opts.body,
      payload: opts.payload,
      headers: opts.payload !== undefined ? { 'content-type': 'application/json', ...opts.headers } : opts.headers,
    });
    slowest = Math.max(slowest, performance.now() - t0);
    assert.equal(res.statusCode, status, res.body.slice(0, 300));
    const e = res.json().error;
    assert.equal(e.code, code);
    assert.equal(typeof e.message, 'string');
    assert.equal(typeof e.retryable, 'boolean');
    assert.match(e.request_id, /^req_/);
    assert.equal(typeof e.details, 'object');
    assert.ok(!/at .*\.ts:\d+/.test(res.body), 'no stack trace leaks');
    assert.deepEqual(await counts(), before, 'nothing half-written');
    return e;
  }

  test('malformed JSON', () => refused('VALIDATION_ERROR', 400, { payload: '{"to": "+12025550100", "body": ' }));
  test('an empty body', () => refused('VALIDATION_ERROR', 400, { payload: '' }));
  test('a JSON array instead of an object', () => refused('VALIDATION_ERROR', 400, { payload: '[1,2]' }));
  test('a 2 MB body', () => refused('PAYLOAD_TOO_LARGE', 413, { payload: JSON.stringify({ to: sim(0), body: 'x'.repeat(2 * 1024 * 1024) }) }));
  test('wrong types: a number as to', async () => {
    const e = await refused('VALIDATION_ERROR', 400, { body: { to: 12025550100, body: 'x' } });
    assert.equal(e.details.field, 'to');
  });
  test('wrong types: an object as body', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: { text: 'x' } } }));
  test('wrong types: a string as validity_period', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', validity_period: '60' } }));
  test('missing to', async () => {
    const e = await refused('VALIDATION_ERROR', 400, { body: { body: 'x' } });
    assert.equal(e.details.field, 'to');
  });
  test('missing text', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0) } }));
  test('an empty text', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: '' } }));
  test('unknown channel', async () => {
    const e = await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', channel: 'pigeon' } });
    assert.equal(e.details.field, 'channel');
  });
  test('a body over the segment limit (10)', async () => {
    const e = await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'y'.repeat(153 * 10 + 1) } });
    assert.equal(e.details.segments, 11);
    assert.equal(e.details.max_segments, 10);
  });
  test('a UCS-2 body over the segment limit', async () => {
    const e = await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: '😀'.repeat(340) } });
    assert.equal(e.details.encoding, 'UCS-2');
  });
  for (const to of ['+15550001111', '12', 'call me', 'abcdefghij', '+1 202 555', '++12025550100', '1-800-FLOWERS', ' ']) {
    test(`an invalid number: ${JSON.stringify(to)}`, () => refused('INVALID_NUMBER', 422, { body: { to, body: 'x' } }));
  }
  test('a bad send_at', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', send_at: 'tomorrow' } }));
  test('send_at too far ahead', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', send_at: '2099-01-01T00:00:00Z' } }));
  test('validity_period out of range', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', validity_period: 0 } }));
  test('a status_callback that is not http(s), or carries credentials', async () => {
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', status_callback: 'ftp://example.com/cb' } });
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', status_callback: 'https://user:pw@example.com/cb' } });
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', status_callback: `https://example.com/${'a'.repeat(2100)}` } });
  });
  test('metadata that is not a map of strings', async () => {
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', metadata: { n: 1 } } });
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', metadata: ['a'] } });
  });
  test('prototype-pollution keys are dropped, never applied', async () => {
    const res = await env.req('POST', '/v1/messages', { payload: '{"to":"+12025550100","body":"x","metadata":{"__proto__":{"polluted":"yes"},"ok":"1"}}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.statusCode, 202);
    assert.deepEqual(res.json().metadata, { ok: '1' });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
  test('a template that does not exist', () => refused('NOT_FOUND', 404, { body: { to: sim(0), template: { name: 'x' } } }));
  test('a template with a body too', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'hi', template: { name: 'x' } } }));
  test('a template that is not an object', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), template: 'tpl_x' } }));
  test('marketing without consent', () => refused('CONSENT_REQUIRED', 422, { body: { to: sim(0), body: 'Sale!', purpose: 'marketing' } }));
  test('an unknown purpose', () => refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', purpose: 'spam' } }));
  test('mms without media, sms with media', async () => {
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', channel: 'mms' } });
    await refused('VALIDATION_ERROR', 400, { body: { to: sim(0), body: 'x', media_urls: ['https://example.com/a.png'] } });
  });
  test('an unsupported content type', () => refused('VALIDATION_ERROR', 400, { payload: 'to=1', headers: { 'content-type': 'text/plain' } }));

  test("Fastify's own 404 has the contract's body", async () => {
    const res = await env.req('GET', '/v1/nothing-here');
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error.code, 'NOT_FOUND');
  });

  test('marketing with an opted_in record goes', async () => {
    const consent = await env.req('POST', '/v1/consent', { body: { phone: sim(5), status: 'opted_in', purpose: 'marketing', source: 'web_form', evidence: { form_url: 'https://shop.example/join', disclosure: 'Msg & data rates may apply.' } } });
    assert.equal(consent.statusCode, 201);
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(5), body: 'Sale!', purpose: 'marketing' } });
    assert.equal(res.statusCode, 202);
  });
});
