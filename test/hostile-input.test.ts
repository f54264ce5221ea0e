// Hostile input at every route (issue 9, "Bad input and attack surface"), generated from the
// app's own /openapi.json: wrong types per field, missing required fields, huge strings, deep
// JSON, prototype-pollution keys, SQL metacharacters, invalid UTF-8, CR/LF in URLs, HTML in
// texts, tokens of other accounts and of the other mode, bad path ids. Every answer is a CONTRACT
// §3 error (the status its code says, never a 500, never a stack trace) or a success; and a
// refused request leaves every table exactly as it was (row counts and contents, compared by a
// checksum of all tables before and after).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../src/clock.ts';
import { ERROR_CODES } from '../src/errors.ts';
import { DIALECT, sim, testEnv, type TestEnv } from './helpers.ts';

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; anyOf?: Schema[]; items?: Schema; enum?: unknown[] };
type Operation = { requestBody?: { content: Record<string, { schema: Schema }> }; parameters?: Array<{ in: string; name: string; schema: Schema; required?: boolean }>; security?: unknown[] };

// Public by design: health and metrics, the token endpoint, and uploaded media, which carriers
// fetch by its unguessable URL (src/media).
const PUBLIC = new Set(['/healthz', '/readyz', '/metrics', '/oauth/token', '/media/{id}/{token}']);
/** Objects that belong to the account, not to a mode (configuration): the other mode may see them. */
// People are managed by an owner signed in with a session only: any bearer token gets 403 there
// (src/users), before the id or the body is looked at.
const SESSION_ONLY = ['/v1/users'];
const ACCOUNT_WIDE = ['/v1/connectors', '/v1/routes', '/v1/senders', '/v1/sender-pools', '/v1/keys', '/v1/clients', '/v1/settings'];

const HOSTILE_STRINGS = [
  "' OR '1'='1'; DROP TABLE messages; --",
  '"; DELETE FROM contacts WHERE ""="',
  '<script>alert(document.cookie)</script><img src=x onerror=alert(1)>',
  '\u0000\u0001\u001b[31m',
  '{{ 7*7 }}${7*7}<%= 7*7 %>',
  '../../../../etc/passwd',
  '𝕳𝖊𝖑𝖑𝖔 \u202e\u2066 مرحبا',
];

const typeOf = (s: Schema | undefined): string | undefined => {
  if (!s) return undefined;
  if (typeof s.type === 'string') return s.type;
  if (Array.isArray(s.type)) return s.type.find((t) => t !== 'null');
  return s.anyOf?.map(typeOf).find((t) => t && t !== 'null');
};

function wrongValues(t: string | undefined): unknown[] {
  switch (t) {
    case 'string':
      return [12345, true, {}, ['a'], 'x'.repeat(100_000)];
    case 'integer':
    case 'number':
      return ['12', 1.5, -1e308, {}, [], true];
    case 'boolean':
      return ['true', 1, {}];
    case 'array':
      return ['x', { 0: 'a' }, [{}, [], null]];
    case 'object':
      return ['x', [], 5, { __proto__: { polluted: true } }];
    default:
      return [{}, 'x'];
  }
}

const FILL: Record<string, unknown> = {
  to: '+1 202 555 0100',
  phone: '+1 202 555 0105',
  from: '+1 202 555 0199',
  body: 'hello',
  url: 'https://hooks.example.com/x',
  status_callback: 'https://hooks.example.com/cb',
  name: 'n',
  type: 'simulator',
  status: 'opted_in',
  purpose: 'marketing',
  source: 'web_form',
  address: '+12025550177',
  email: 'a@example.com',
};

function baseValue(name: string, s: Schema): unknown {
  if (name in FILL) return FILL[name];
  if (s.enum?.length) return s.enum[0];
  const t = typeOf(s);
  if (t === 'string') return 'x';
  if (t === 'integer' || t === 'number') return 1;
  if (t === 'boolean') return true;
  if (t === 'array') return [];
  if (t === 'object') return {};
  return 'x';
}

describe('hostile input at every route of /openapi.json', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  let otherAccountKey = '';
  let cases = 0;
  let routes = 0;
  const ids: Record<string, string> = {};
  let tables: string[] = [];

  // A refused sign-in is recorded on purpose: it counts towards the lockout (sign_in_throttle)
  // and is an audit entry. Every other table must stay as it was.
  const RECORDED_ON_REFUSAL: Record<string, string[]> = { 'POST /v1/session': ['sign_in_throttle', 'audit_log', 'audit_heads'] };

  /**
   * Every table's rows, rendered and sorted by the database itself, in ONE query: a round trip
   * per table per case made the suite slow on PostgreSQL (thousands of cases × every table).
   */
  const tableDigests = new Map<string, string>();
  async function snapshot(skip: string[] = []): Promise<string> {
    const parts = [...tableDigests].filter(([t]) => !skip.includes(t)).map(([, q]) => q);
    const rows = await sql<{ t: string; h: string | null }>`${sql.raw(parts.join(' union all '))}`.execute(env.p.storage.db.withoutPlugins());
    const h = createHash('sha256');
    for (const r of rows.rows.sort((a, b) => (a.t < b.t ? -1 : 1))) h.update(`${r.t}:${r.h ?? ''}\n`);
    return h.digest('hex');
  }

  before(async () => {
    env = await testEnv({ clock, config: { SWITCHBOARD_RATE_LIMIT_PER_CREDENTIAL: 0, SWITCHBOARD_RATE_LIMIT_PER_ACCOUNT: 0 } });
    const other = await env.p.accounts.create('Other account');
    otherAccountKey = (await env.p.credentials.createKey(other.id, { scopes: ['admin'], mode: 'test' })).secret;
    const post = async (url: string, body: unknown, token = env.testKey) => {
      const r = await env.req('POST', url, { body, token });
      assert.ok(r.statusCode < 300, `${url}: ${r.body}`);
      return r.json();
    };
    ids.messages = (await post('/v1/messages', { to: sim(11), body: 'seed' })).id;
    ids.webhooks = (await post('/v1/webhooks', { url: 'http://127.0.0.1:9/seed' })).id;
    ids.contacts = (await post('/v1/contacts', { phone: sim(4), name: 'Seed' })).id;
    ids.conversations = '';
    await post('/v1/simulator/inbound', { from: sim(4), body: 'hello' });
    ids.templates = (await post('/v1/templates', { name: 'seed', body: 'Hi {{ name }}', variables: ['name'] })).id;
    ids.lists = (await post('/v1/lists', { name: 'seed' })).id;
    ids.segments = (await post('/v1/segments', { name: 'seed', filter: { tags: ['x'] } })).id;
    ids.campaigns = (await post('/v1/campaigns', { name: 'seed', audience: { list_id: ids.lists }, body: 'Hi', purpose: 'transactional' })).id;
    ids['inbound-routes'] = (await post('/v1/inbound-routes', { match: { keyword: 'SEED' }, endpoint_id: ids.webhooks })).id;
    ids.connectors = (await post('/v1/connectors', { name: 'seed', type: 'simulator', config: {} }, env.liveKey)).id;
    ids.senders = (await post('/v1/senders', { address: '+12025550177', type: 'long_code', capabilities: ['sms'] })).id;
    ids.routes = (await post('/v1/routes', { priority: 5, filters: { country: 'US' }, connector_id: ids.connectors })).id;
    ids['sender-pools'] = (await post('/v1/sender-pools', { name: 'seed', sender_ids: [ids.senders] })).id;
    ids.imports = (await env.req('POST', '/v1/contacts/import', { payload: 'phone,name\n+12025550106,Imp\n', headers: { 'content-type': 'text/csv' } })).json().id;
    ids.keys = (await post('/v1/keys', { scopes: ['messages:read'], mode: 'test' })).id;
    for (let i = 0; i < 6; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    ids.conversations = (await env.req('GET', '/v1/conversations')).json().data[0]?.id ?? '';
    ids.review = (await env.req('GET', '/v1/review')).json().data[0]?.id ?? '';
    ids.deliveries = (await env.req('GET', '/v1/webhooks/deliveries')).json().data[0]?.id ?? '';
    for (const [k, v] of Object.entries(ids)) assert.ok(v, `seeded ${k}`);
    tables =
      DIALECT === 'sqlite'
        ? (await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`.execute(env.p.storage.db)).rows.map((r) => r.name)
        : (await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = 'public'`.execute(env.p.storage.db)).rows.map((r) => r.name);
    for (const t of tables) {
      const q = `"${t.replace(/"/g, '""')}"`;
      if (DIALECT === 'postgres') {
        tableDigests.set(t, `select '${t}' as t, count(*)::text || ':' || coalesce(md5(string_agg(x::text, E'\\n' order by x::text)), '') as h from ${q} x`);
      } else {
        const cols = (await sql<{ name: string }>`select name from pragma_table_info(${t})`.execute(env.p.storage.db)).rows.map((c) => `quote("${c.name.replace(/"/g, '""')}")`);
        const row = cols.join(` || ',' || `);
        tableDigests.set(t, `select '${t}' as t, count(*) || ':' || coalesce(group_concat(r, char(10)), '') as h from (select ${row} as r from ${q} order by 1)`);
      }
    }
    // The detector must see a change of one column of one row, and its undoing.
    const plain = await snapshot();
    const raw = env.p.storage.db.withoutPlugins();
    await raw.updateTable('messages').set((eb) => ({ updated_at: eb('updated_at', '+', 1) })).where('id', '=', ids.messages).execute();
    assert.notEqual(await snapshot(), plain, 'the snapshot sees a changed column');
    await raw.updateTable('messages').set((eb) => ({ updated_at: eb('updated_at', '-', 1) })).where('id', '=', ids.messages).execute();
    assert.equal(await snapshot(), plain, 'and the same data again');
  });
  after(async () => {
    console.log(`# hostile input: ${cases} cases over ${routes} route+method pairs`);
    await env.close();
  });

  /** The seeded object a path's {id} names, from the path's shape. */
  function idFor(path: string): string {
    if (path.startsWith('/v1/contacts/imports/')) return ids.imports;
    if (path.startsWith('/v1/webhooks/deliveries/')) return ids.deliveries;
    const m = /^\/v1\/([a-z-]+)\/\{id\}/.exec(path);
    return (m && ids[m[1]]) || 'x_unknown';
  }

  // The test-mode data of the default account: its ids, and numbers used only there.
  const seededIds = (who?: string) => [
    // Connectors, routes, senders and pools belong to the whole account, both modes (the audit log
    // shows their changes to either); the other mode may name them.
    ...Object.entries(ids)
      .filter(([kind, v]) => v && !(who === 'the other mode' && ACCOUNT_WIDE.includes(`/v1/${kind}`)))
      .map(([, v]) => v),
    sim(11),
    sim(4),
    '+12025550106',
    encodeURIComponent(sim(4)),
  ];

  /** The database as the last check left it: a refused request must leave it so. */
  let lastSnapshot: string | null = null;

  async function check(label: string, method: string, url: string, opts: { token?: string | null; payload?: string | Buffer; headers?: Record<string, string> }, expect?: (status: number, body: string) => void) {
    cases++;
    const skip = RECORDED_ON_REFUSAL[`${method} ${url.split('?')[0]}`] ?? [];
    const before = skip.length ? await snapshot(skip) : (lastSnapshot ?? (await snapshot()));
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? env.testKey}`;
    const res = await env.app.inject({ method: method as 'GET', url, headers, payload: opts.payload });
    const where = `${label}: ${method} ${url.slice(0, 120)} → ${res.statusCode} ${res.body.slice(0, 200)}`;
    assert.ok(res.statusCode < 500, where);
    assert.ok(!/\bat [^\n]*\.(ts|js):\d+/.test(res.body), `a stack trace: ${where}`);
    if (res.statusCode >= 400) {
      let e: { code: string; message: string; retryable: boolean; request_id: string; details: unknown } | undefined;
      try {
        e = JSON.parse(res.body).error;
      } catch {
        // asserted below
      }
      assert.ok(e && typeof e.code === 'string' && typeof e.message === 'string' && typeof e.retryable === 'boolean' && /^req_/.test(e.request_id) && typeof e.details === 'object', `not a CONTRACT §3 error: ${where}`);
      const known = (ERROR_CODES as Record<string, { status: number }>)[e!.code];
      assert.ok(known && known.status === res.statusCode, `code ${e!.code} with HTTP ${res.statusCode}: ${where}`);
      const after = await snapshot(skip);
      lastSnapshot = skip.length ? null : after;
      assert.equal(after, before, `a refused request changed the database: ${where}`);
    } else lastSnapshot = null; // a success may change it: read it again before the next case
    expect?.(res.statusCode, res.body);
    return res;
  }

  test('every route and method, every kind of hostile input', { timeout: 600_000 }, async () => {
    const doc = (await env.req('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const method = m.toUpperCase();
        routes++;
        const url = path.replace('{id}', idFor(path));
        const isPublic = PUBLIC.has(path) || path === '/openapi.json';
        const modeScoped = !ACCOUNT_WIDE.some((p) => path.startsWith(p));
        const json = op.requestBody?.content['application/json']?.schema;
        const send = (body: unknown) => ({ payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        const base: Record<string, unknown> = {};
        for (const r of json?.required ?? []) base[r] = baseValue(r, json?.properties?.[r] ?? {});
        const withBody = (extra: Parameters<typeof check>[3]) => (json ? { ...send(base), ...extra } : extra);

        // Who may not: no token, a malformed one, another account's, the other mode's.
        if (!isPublic) {
          await check('no token', method, url, { token: null, ...withBody({}) }, (s) => assert.equal(s, 401, `${method} ${path} without a token`));
          await check('malformed token', method, url, { token: 'sb_test_\r\nX-Evil: 1', ...withBody({}) }, (s) => assert.ok(s === 401 || s === 400, `${method} ${path}`));
          await check('forged JWT', method, url, { token: 'eyJhbGciOiJub25lIn0.eyJhY2N0IjoiYWNjdF94In0.', ...withBody({}) }, (s) => assert.equal(s, 401));
          for (const [who, token] of [['another account', otherAccountKey], ['the other mode', env.liveKey]] as const) {
            if (who === 'the other mode' && !modeScoped) continue;
            await check(who, method, url, { token, ...withBody({}) }, (s, body) => {
              if (path.includes('{id}')) assert.ok(s === 404 || s === 403 || s === 400, `${who} reached ${method} ${url}: ${s} ${body.slice(0, 200)}`);
              else if (s < 300) for (const id of seededIds(who)) assert.ok(!body.includes(id), `${who} sees ${id} at ${method} ${path}`);
            });
          }
        }
        // Bad path ids.
        if (path.includes('{id}')) {
          for (const bad of ['x', "1' OR '1'='1", '..%2F..%2Fetc%2Fpasswd', '%00', 'a'.repeat(500), '%F0%9F%98%80', '-1', '9'.repeat(40)]) {
            await check('bad id', method, path.replace('{id}', bad), withBody({}), (s) => assert.ok(s === 404 || s === 400 || (s === 403 && SESSION_ONLY.some((p) => path.startsWith(p))), `${method} ${path} with id ${bad}: ${s}`));
          }
        }
        // Query strings.
        for (const q of op.parameters?.filter((p) => p.in === 'query') ?? []) {
          for (const v of ['abc', '-1', '1e309', '%00', encodeURIComponent(HOSTILE_STRINGS[0]), 'x'.repeat(5000), '[object Object]']) {
            await check(`query ${q.name}`, method, `${url}?${q.name}=${v}`, withBody({}));
          }
        }
        // Bodies.
        if (json) {
          await check('missing required fields', method, url, send({}));
          for (const raw of ['[]', '"text"', 'null', '42', '{"a":', '{"__proto__": {"admin": true}, "constructor": {"prototype": {"polluted": 1}}}']) {
            await check('not an object', method, url, { payload: raw, headers: { 'content-type': 'application/json' } });
          }
          await check('deep JSON', method, url, { payload: `{"x": ${'['.repeat(10_000)}${']'.repeat(10_000)}}`, headers: { 'content-type': 'application/json' } });
          await check('invalid UTF-8', method, url, { payload: Buffer.concat([Buffer.from('{"name": "'), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('"}')]), headers: { 'content-type': 'application/json' } });
          await check('wrong content type', method, url, { payload: '<x/>', headers: { 'content-type': 'application/xml' } });
          for (const [field, s] of Object.entries(json.properties ?? {})) {
            for (const v of wrongValues(typeOf(s))) await check(`wrong type ${field}`, method, url, send({ ...base, [field]: v }));
            if (typeOf(s) === 'string') {
              for (const v of HOSTILE_STRINGS) await check(`hostile ${field}`, method, url, send({ ...base, [field]: v }));
              if (/url|callback|href|link/i.test(field)) {
                await check(`CRLF in ${field}`, method, url, send({ ...base, [field]: 'https://hooks.example.com/x\r\nX-Injected: yes' }), (st) => assert.ok(st >= 400, `${field} with CR/LF accepted at ${method} ${path}`));
              }
            }
            if (typeOf(s) === 'array' && /url/i.test(field)) {
              await check(`CRLF in ${field}`, method, url, send({ ...base, [field]: ['https://m.example.com/a.png\r\nHost: evil'] }), (st) => assert.ok(st >= 400));
            }
          }
          await check('prototype keys beside valid fields', method, url, { payload: `{${Object.entries(base).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)},`).join('')}"__proto__":{"isAdmin":true},"constructor":{"prototype":{"x":1}}}`, headers: { 'content-type': 'application/json' } });
        }
        assert.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype polluted');
        assert.equal(({} as Record<string, unknown>).isAdmin, undefined, 'Object.prototype polluted');
      }
    }
    assert.ok(routes > 80, `${routes} routes`);
    assert.ok(cases > 1000, `${cases} cases`);
  });

  test('HTML and script in bodies and names are stored and returned as inert data', async () => {
    const html = '<script>alert("x")</script><img src=x onerror=alert(1)>';
    const m = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: html } });
    assert.equal(m.statusCode, 202);
    const got = await env.req('GET', `/v1/messages/${m.json().id}`);
    assert.equal(got.json().body, html);
    assert.match(String(got.headers['content-type']), /^application\/json/);
    assert.equal(got.headers['x-content-type-options'], 'nosniff');
    const c = await env.req('POST', '/v1/contacts', { body: { phone: sim(9, '303'), name: html.slice(0, 200) } });
    assert.equal(c.statusCode, 201, c.body);
    assert.equal((await env.req('GET', `/v1/contacts/${c.json().id}`)).json().name, html.slice(0, 200));
  });
});
