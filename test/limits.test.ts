// Limits (issue 9): request rate limits per credential and per account (429 RATE_LIMITED with
// Retry-After), body size limits for every content type, JSON depth, connection limits of the
// listening server, and SSRF: private, loopback and link-local addresses refused at the door and
// again at connect time (a resolver injected in place of DNS shows the rebinding case).
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { guardedFetch, type Resolver } from '../src/net/guarded-fetch.ts';
import { checkUrl, isPrivateAddress } from '../src/net/url-policy.ts';
import { applyConnectionLimits } from '../src/security/rate-limits.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';

function assertContractError(res: { statusCode: number; body: string; headers: Record<string, unknown> }, status: number, code: string) {
  assert.equal(res.statusCode, status, res.body.slice(0, 300));
  const e = JSON.parse(res.body).error;
  assert.equal(e.code, code);
  assert.match(e.request_id, /^req_/);
  assert.equal(typeof e.details, 'object');
}

describe('request rate limits', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_RATE_LIMIT_PER_CREDENTIAL: 5, SWITCHBOARD_RATE_LIMIT_PER_ACCOUNT: 8 } });
  });
  after(() => env.close());

  test('a credential over its limit gets 429 RATE_LIMITED with Retry-After; the account limit holds across its credentials', async () => {
    const a = await env.key();
    const b = await env.key();
    const codes: number[] = [];
    for (let i = 0; i < 6; i++) codes.push((await env.req('GET', '/v1/messages?limit=1', { token: a })).statusCode);
    assert.deepEqual(codes.slice(0, 5), [200, 200, 200, 200, 200]);
    const limited = await env.req('GET', '/v1/messages?limit=1', { token: a });
    assertContractError(limited, 429, 'RATE_LIMITED');
    assert.match(String(limited.headers['retry-after']), /^[1-9]\d*$/);
    assert.equal(limited.json().error.details.scope, 'credential');
    assert.equal(limited.json().error.retryable, true);
    // Another key of the account has its own credential budget, but the account's is nearly spent.
    const more: number[] = [];
    for (let i = 0; i < 4; i++) more.push((await env.req('GET', '/v1/messages?limit=1', { token: b })).statusCode);
    assert.ok(more.includes(429), `account limit: ${more.join(',')}`);
    const last = await env.req('GET', '/v1/messages?limit=1', { token: b });
    assert.equal(last.json().error.details.scope, 'account');
    // A second later, both go again.
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await env.req('GET', '/v1/messages?limit=1', { token: a })).statusCode, 200);
  });
});

describe('body and nesting limits, every content type', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_BODY_LIMIT_BYTES: 64 * 1024 } });
  });
  after(() => env.close());

  test('JSON, form, CSV and multipart bodies over the limit get 413; deep JSON gets 400', async () => {
    const big = 'x'.repeat(70 * 1024);
    assertContractError(await env.req('POST', '/v1/messages', { payload: JSON.stringify({ to: sim(0), body: big }), headers: { 'content-type': 'application/json' } }), 413, 'PAYLOAD_TOO_LARGE');
    assertContractError(await env.req('POST', '/oauth/token', { token: null, payload: `grant_type=client_credentials&x=${big}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 413, 'PAYLOAD_TOO_LARGE');
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const d = await env.req('POST', '/v1/messages/batch', { payload: `{"messages": [{"to": "${sim(0)}", "body": "x", "extra": ${deep}}]}`, headers: { 'content-type': 'application/json' } });
    assertContractError(d, 400, 'VALIDATION_ERROR');
    assert.equal(d.json().error.details.max_depth, 32);
    // A CSV import past its own cap (the importer counts the streamed bytes).
    const csvHeaderOnly = await env.req('POST', '/v1/contacts/import', { payload: 'phone\n', headers: { 'content-type': 'text/csv' } });
    assert.ok(csvHeaderOnly.statusCode < 500, csvHeaderOnly.body);
    // Multipart: two files where one is allowed, a field over 64 KB.
    const boundary = 'sbboundary';
    const part = (name: string, content: string, file = true) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${file ? `; filename="${name}.csv"` : ''}\r\n${file ? 'Content-Type: text/csv\r\n' : ''}\r\n${content}\r\n`;
    const multi = await env.req('POST', '/v1/contacts/import', {
      payload: `${part('a', 'phone\n+12025550100')}${part('b', 'phone\n+12025550101')}--${boundary}--\r\n`,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    assert.ok(multi.statusCode < 500, multi.body);
    const field = await env.req('POST', '/v1/contacts/import', {
      payload: `${part('note', 'y'.repeat(65 * 1024), false)}${part('file', 'phone\n+12025550100')}--${boundary}--\r\n`,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    });
    // busboy cuts a field at 64 KB (fieldSize) instead of buffering it; the import ignores fields.
    assert.ok(field.statusCode < 500, `${field.statusCode} ${field.body}`);
  });
});

describe('connection limits of the listening server', () => {
  let env: TestEnv;
  let port = 0;
  before(async () => {
    env = await testEnv();
    applyConnectionLimits(env.app.server, { maxConnections: 2, headersTimeoutMs: 1000, requestTimeoutMs: 2000, keepAliveTimeoutMs: 1000 });
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    port = (env.app.server.address() as AddressInfo).port;
  });
  after(() => env.close());

  const open = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s));
      s.on('error', reject);
      s.resume(); // read what comes (a 408), so that the end and the close are seen
    });
  const closed = (s: net.Socket) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve())));

  test('past maxConnections a new socket is closed; a client sending headers too slowly is cut off', async () => {
    const a = await open();
    const b = await open();
    a.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // never finishes its headers
    const c = await open();
    await Promise.race([closed(c), new Promise((_, reject) => setTimeout(() => reject(new Error('the third socket stayed open')), 5000))]);
    // The slow one is cut off by the headers timeout (checked every second or so by Node).
    await Promise.race([closed(a), new Promise((_, reject) => setTimeout(() => reject(new Error('the slow client was not cut off')), 15_000))]);
    b.destroy();
    await eventually(async () => {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
      return r?.status === 200;
    }, 10_000, 'the server answers again');
  });
});

describe('SSRF: private addresses at the door and at connect time', () => {
  const privates = [
    '127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1', '224.0.0.1', '255.255.255.255',
    '::1', '::', '[::1]', 'fe80::1', 'fd00::1', 'fc00::2', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:a9fe:a9fe', '::ffff:10.0.0.1', '64:ff9b::7f00:1', '2002:7f00:1::1', 'ff02::1',
    'localhost', 'LOCALHOST.', 'api.localhost', 'printer.local', 'metadata.google.internal',
  ];
  const publics = ['93.184.216.34', '8.8.8.8', '172.32.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', 'example.com', 'hooks.example.org'];

  test('the address table', () => {
    for (const h of privates) assert.equal(isPrivateAddress(h), true, h);
    for (const h of publics) assert.equal(isPrivateAddress(h), false, h);
  });

  test('URLs in every notation of a private address are refused unless allowed', () => {
    for (const u of ['http://127.0.0.1/', 'http://2130706433/', 'http://0x7f.0.0.1/', 'http://017700000001/', 'http://[::ffff:127.0.0.1]/', 'http://[::1]:8080/', 'http://169.254.169.254/latest/meta-data/', 'http://localhost./', 'https://[fd00::1]/']) {
      assert.throws(() => checkUrl(u, 'url', false), /private or loopback/, u);
      assert.doesNotThrow(() => checkUrl(u, 'url', true), u);
    }
    assert.throws(() => checkUrl('https://example.com/a\r\nX-Injected: 1', 'url', false), /white space or control/);
    assert.equal(checkUrl('https://example.com/hook', 'url', false), 'https://example.com/hook');
  });

  let env: TestEnv;
  const target = http.createServer((_req, res) => {
    hits++;
    res.end('ok');
  });
  let hits = 0;
  let port = 0;
  // DNS as the test wants it: these names point at the local server.
  const resolver: Resolver = async (host) => {
    if (host.endsWith('.rebind.test')) return [{ address: '127.0.0.1', family: 4 }];
    if (host.endsWith('.public.test')) return [{ address: '93.184.216.34', family: 4 }, { address: '10.0.0.7', family: 4 }];
    throw Object.assign(new Error(`no such name ${host}`), { code: 'ENOTFOUND' });
  };
  before(async () => {
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
    port = (target.address() as AddressInfo).port;
    env = await testEnv({ clock: new ManualClock(Date.now()), resolver, config: { SWITCHBOARD_ALLOW_PRIVATE_URLS: false } });
  });
  after(async () => {
    await env.close();
    await new Promise<void>((r) => target.close(() => r()));
  });

  test('the API refuses webhook, status_callback and media URLs on private addresses', async () => {
    for (const url of ['http://127.0.0.1:9/x', 'http://[::ffff:7f00:1]/x', 'http://169.254.169.254/x']) {
      assertContractError(await env.req('POST', '/v1/webhooks', { body: { url } }), 400, 'VALIDATION_ERROR');
      assertContractError(await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'x', status_callback: url } }), 400, 'VALIDATION_ERROR');
      assertContractError(await env.req('POST', '/v1/messages', { body: { to: sim(0), channel: 'mms', media_urls: [url] } }), 400, 'VALIDATION_ERROR');
    }
    assertContractError(await env.req('POST', '/v1/webhooks', { body: { url: 'https://hooks.example.com/a%0d%0aX: 1\r\nHost: evil' } }), 400, 'VALIDATION_ERROR');
  });

  test('guardedFetch: a name that resolves to a private address is refused at connect time and nothing connects', async () => {
    await assert.rejects(guardedFetch(`http://hook.rebind.test:${port}/`, {}, { allowPrivate: false, resolver }), (err: Error) => /private address/.test(String((err as { cause?: Error }).cause?.message ?? err.message)));
    // One private address among public ones is enough to refuse.
    await assert.rejects(guardedFetch(`http://mixed.public.test:${port}/`, {}, { allowPrivate: false, resolver, timeoutMs: 3000 }));
    await assert.rejects(guardedFetch(`http://127.0.0.1:${port}/`, {}, { allowPrivate: false, resolver }), /private address/);
    assert.equal(hits, 0);
    // Allowed: the connection goes to the address the resolver gave (no system DNS knows this name).
    const ok = await guardedFetch(`http://hook.rebind.test:${port}/`, {}, { allowPrivate: true, resolver });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'ok');
    assert.equal(hits, 1);
  });

  test('webhook deliveries: a public-looking name that resolves to 127.0.0.1 at send time is refused', async () => {
    const res = await env.req('POST', '/v1/webhooks', { body: { url: `http://hooks.rebind.test:${port}/hook` } });
    assert.equal(res.statusCode, 201, res.body);
    assert.equal((await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'x' } })).statusCode, 202);
    for (let i = 0; i < 3; i++) await env.p.runDue();
    const deliveries = (await env.req('GET', `/v1/webhooks/${res.json().id}/deliveries`)).json().data;
    assert.ok(deliveries.length >= 1);
    assert.ok(deliveries.some((d: { last_error: string | null }) => /private address/.test(d.last_error ?? '')), JSON.stringify(deliveries.map((d: { last_error: string | null }) => d.last_error)));
    assert.equal(hits, 1, 'no request reached the local server');
  });
});
