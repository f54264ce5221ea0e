// The audit log through HTTP and the CLI: every kind of change recorded with who, when, from
// where and what; GET /v1/audit's filters and paging; and `switchboard audit verify` passing on
// an untouched log and failing, naming the entry, after a row is edited, removed or reordered
// by hand in the database — on the dialect this run uses (npm test runs both).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { record } from '../src/audit/audit-service.ts';
import { ManualClock } from '../src/clock.ts';
import { TEST_DEFAULTS, sim, testEnv, type TestEnv } from './helpers.ts';
import { PASSWORD, addUser, person, postSession } from './people-helpers.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

type Entry = { id: string; seq: number; action: string; actor: { type: string; id: string }; target: { type: string; id: string } | null; ip: string | null; details: Record<string, unknown>; mode: string | null; at: string };

describe('audit log', () => {
  const clock = new ManualClock(Date.parse('2030-03-02T10:00:00Z'));
  let env: TestEnv;
  const audit = async (query = '', token?: string): Promise<Entry[]> => {
    const res = await env.req('GET', `/v1/audit${query}`, token ? { token } : {});
    assert.equal(res.statusCode, 200, res.body);
    return res.json().data;
  };
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      env: { ...process.env, DATABASE_URL: env.dbPath, SWITCHBOARD_ENCRYPTION_KEY: TEST_DEFAULTS.SWITCHBOARD_ENCRYPTION_KEY, LOG_LEVEL: 'warn' },
      encoding: 'utf8',
      timeout: 120_000,
    });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  test('sign-ins, sign-outs and people are recorded with the address they came from', async () => {
    const user = await addUser(env, 'sender');
    assert.equal((await postSession(env, { email: user.email, password: 'wrong password here' })).statusCode, 401);
    assert.equal((await postSession(env, { email: 'nobody@else.example', password: 'wrong password here' })).statusCode, 401);
    const { req, session } = await person(env, 'owner');
    await req('POST', '/v1/users', { email: 'new@clinic.example', password: PASSWORD, role: 'viewer' });
    const added = (await req('GET', '/v1/users')).json().data.find((u: { email: string }) => u.email === 'new@clinic.example');
    await req('PATCH', `/v1/users/${added.id}`, { role: 'agent' });
    await req('DELETE', '/v1/session');

    const entries = await audit('?limit=200');
    const failed = entries.find((e) => e.action === 'session.failed' && e.actor.id === user.id)!;
    assert.equal(failed.details.reason, 'bad_credentials');
    assert.equal(failed.ip, '127.0.0.1');
    const signedIn = entries.find((e) => e.action === 'session.created' && e.actor.id === session.body.user.id)!;
    assert.equal(signedIn.ip, '127.0.0.1');
    assert.equal(signedIn.target?.type, 'session');
    assert.equal(signedIn.at, new Date(clock.now()).toISOString());
    assert.ok(entries.some((e) => e.action === 'session.revoked' && e.actor.id === session.body.user.id));
    const created = entries.find((e) => e.action === 'user.created' && e.target?.id === added.id)!;
    assert.deepEqual(created.actor, { type: 'user', id: session.body.user.id });
    assert.deepEqual(created.details, { email: 'new@clinic.example', role: 'viewer' });
    const role = entries.find((e) => e.action === 'user.role_changed' && e.target?.id === added.id)!;
    assert.deepEqual(role.details, { role: 'agent', previous_role: 'viewer' });
    assert.ok(!JSON.stringify(entries).includes(PASSWORD), 'no password in the log');
    // An unknown email belongs to no account: its entry is the installation's, not this account's.
    assert.ok(!entries.some((e) => e.details.email === 'nobody@else.example'));
    const installation = await env.p.storage.db.selectFrom('audit_log').selectAll().where('chain', '=', '_installation').execute();
    assert.ok(installation.some((r) => r.action === 'session.failed' && JSON.parse(r.details).email === 'nobody@else.example'));
  });

  test('keys, clients, connectors, routes, senders, webhooks, settings, consent, exports and campaigns are recorded', async () => {
    const { req, user } = await person(env, 'admin', { mode: 'test' });
    const key = (await req('POST', '/v1/keys', { scopes: ['messages:read'] })).json();
    await req('DELETE', `/v1/keys/${key.id}`);
    const client = (await req('POST', '/v1/clients', { scopes: ['messages:read'] })).json();
    await req('DELETE', `/v1/clients/${client.client_id}`);
    const conn = (await req('POST', '/v1/connectors', { name: 'audited', type: 'simulator', config: { latency_ms: 5 } })).json();
    await req('PATCH', `/v1/connectors/${conn.id}`, { enabled: false });
    const route = (await req('POST', '/v1/routes', { priority: 5, connector_id: conn.id })).json();
    await req('DELETE', `/v1/routes/${route.id}`);
    const sender = (await req('POST', '/v1/senders', { address: '+12025550188', connector_id: conn.id })).json();
    await req('DELETE', `/v1/senders/${sender.id}`);
    await req('DELETE', `/v1/connectors/${conn.id}`);
    const hook = (await req('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/hook?token=abc' })).json();
    await req('PATCH', `/v1/webhooks/${hook.id}`, { enabled: false });
    await req('POST', `/v1/webhooks/${hook.id}/rotate-secret`, {});
    await req('DELETE', `/v1/webhooks/${hook.id}`);
    await req('PATCH', '/v1/settings/messaging', { quiet_hours: { enabled: false } });
    await req('POST', '/v1/consent', { phone: sim(2), status: 'opted_out', source: 'api' });
    const csv = await req('GET', '/v1/consent/export');
    assert.equal(csv.statusCode, 200);
    const campaign = (await req('POST', '/v1/campaigns', { name: 'Flu shots', audience: { csv: `phone\n${sim(1)}` }, body: 'Flu shots are in.' })).json();
    assert.equal((await req('POST', `/v1/campaigns/${campaign.id}/start`)).statusCode, 200);

    const mine = await audit(`?actor=${user.id}&limit=200`);
    const actions = new Set(mine.map((e) => e.action));
    for (const a of [
      'session.created', 'key.created', 'key.revoked', 'client.created', 'client.revoked', 'connector.created', 'connector.updated', 'connector.deleted',
      'route.created', 'route.deleted', 'sender.created', 'sender.deleted', 'webhook.created', 'webhook.updated', 'webhook.secret_rotated', 'webhook.deleted',
      'settings.updated', 'consent.changed', 'export.created', 'campaign.started',
    ]) assert.ok(actions.has(a), `${a} is recorded`);
    assert.ok(mine.every((e) => e.ip === '127.0.0.1' && e.actor.type === 'user'));
    const keyCreated = mine.find((e) => e.action === 'key.created')!;
    assert.deepEqual(keyCreated.target, { type: 'api_key', id: key.id });
    assert.equal(keyCreated.mode, 'test');
    assert.ok(!JSON.stringify(mine).includes(key.secret) && !JSON.stringify(mine).includes(client.client_secret) && !JSON.stringify(mine).includes(hook.secret), 'no secret in the log');
    assert.equal(mine.find((e) => e.action === 'webhook.created')!.details.url, 'http://127.0.0.1:9/hook', 'a URL without its query');
    assert.deepEqual(mine.find((e) => e.action === 'connector.updated')!.details, { enabled: false });
    // A key's own changes are recorded against the key.
    const byKey = await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'] } });
    const keyActor = (await audit(`?target=${byKey.json().id}`))[0];
    assert.equal(keyActor.actor.type, 'api_key');
  });

  test('consent changed by a STOP keyword and by the carrier is recorded, without the message', async () => {
    const number = (await env.p.accounts.get(env.accountId)).default_sender!;
    await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(6), to: number, body: 'STOP' } });
    await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(6), to: number, body: 'START' } });
    await env.req('POST', '/v1/messages', { body: { to: sim(14), body: 'the carrier says opted out' } });
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      await env.p.runDue();
    }
    const consent = await audit('?action=consent.changed&limit=200');
    const keyword = consent.filter((e) => e.target?.id === sim(6));
    assert.deepEqual(keyword.map((e) => [e.details.status, e.details.source, e.actor.id]), [['opted_in', 'keyword', 'keyword'], ['opted_out', 'keyword', 'keyword']]);
    const carrier = consent.find((e) => e.target?.id === sim(14))!;
    assert.equal(carrier.details.source, 'carrier');
    assert.ok(!JSON.stringify(consent).includes('STOP'), 'the keyword message itself stays out');
    assert.ok((await audit('?action=consent.*&limit=200')).length >= consent.length);
  });

  test('every reading of message bodies by a person is recorded; a viewer’s and a key’s are not', async () => {
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'Private: your results' } })).json();
    const nurse = await person(env, 'agent', { mode: 'test' });
    assert.equal((await nurse.req('GET', `/v1/messages/${m.id}`)).json().body, 'Private: your results');
    await nurse.req('GET', '/v1/messages?limit=5');
    await nurse.req('GET', `/v1/messages/${m.id}/events`);
    const viewer = await person(env, 'viewer', { mode: 'test' });
    await viewer.req('GET', `/v1/messages/${m.id}`);
    await env.req('GET', `/v1/messages/${m.id}`);
    const reads = await audit(`?action=message.body_read&limit=200`);
    const nurseReads = reads.filter((e) => e.actor.id === nurse.user.id);
    assert.deepEqual(nurseReads.map((e) => e.details.view).sort(), ['message', 'message_events', 'message_list']);
    const single = nurseReads.find((e) => e.details.view === 'message')!;
    assert.deepEqual(single.target, { type: 'message', id: m.id });
    assert.equal(single.ip, '127.0.0.1');
    assert.ok((nurseReads.find((e) => e.details.view === 'message_list')!.details.message_ids as string[]).includes(m.id));
    assert.ok(!reads.some((e) => e.actor.id === viewer.user.id), 'a viewer was shown no body');
    assert.ok(!reads.some((e) => e.actor.type === 'api_key'), 'programs are not people');
  });

  test('GET /v1/audit: newest first, filters, cursor paging, one mode at a time', async () => {
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'], name: `paging ${i}` } });
    }
    const since = new Date(clock.now() - 2.5 * 60_000).toISOString();
    const recent = await audit(`?action=key.created&since=${encodeURIComponent(since)}`);
    assert.deepEqual(recent.map((e) => e.details.name), ['paging 4', 'paging 3', 'paging 2']);
    const until = await audit(`?action=key.created&until=${encodeURIComponent(since)}&limit=1`);
    assert.equal(until[0].details.name, 'paging 1');
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const res = await env.req('GET', `/v1/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      const page = res.json();
      seen.push(...page.data.map((e: Entry) => e.seq));
      cursor = page.next_cursor;
    } while (cursor);
    assert.deepEqual(seen, [...seen].sort((a, b) => b - a), 'newest first');
    assert.equal(new Set(seen).size, seen.length, 'no entry twice');
    assert.equal(seen[seen.length - 1], 1);
    // A live key sees the live entries and those of no mode; none of test mode.
    await env.req('POST', '/v1/keys', { token: env.liveKey, body: { scopes: ['messages:read'], name: 'live one' } });
    const live = await audit('?limit=200', env.liveKey);
    assert.ok(live.some((e) => e.details.name === 'live one'));
    assert.ok(live.every((e) => e.mode === null || e.mode === 'live'));
    assert.equal((await env.req('GET', '/v1/audit?cursor=abc')).statusCode, 400);
    assert.equal((await env.req('GET', '/v1/audit?since=yesterday')).statusCode, 400);
    const readOnly = await env.key({ scopes: ['messages:read'] });
    assert.equal((await env.req('GET', '/v1/audit', { token: readOnly })).statusCode, 403);
    assert.equal((await env.req('GET', '/v1/audit', { token: await env.key({ scopes: ['audit:read'] }) })).statusCode, 200);
  });

  test('concurrent writers never fork a chain', async () => {
    const acct = (await env.p.accounts.create('Busy clinic')).id;
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => record(env.p.storage.db, { accountId: acct, actor: { type: 'system', id: 'test' }, action: 'test.concurrent', details: { i }, at: clock.now() })),
    );
    const rows = await env.p.storage.db.selectFrom('audit_log').select('seq').where('chain', '=', acct).orderBy('seq').execute();
    assert.deepEqual(rows.map((r) => Number(r.seq)), Array.from({ length: 40 }, (_, i) => i + 1));
    const report = await env.p.audit.verify(acct);
    assert.equal(report.ok, true, JSON.stringify(report.fault));
  });

  test('switchboard audit verify passes untouched, and fails naming the entry after an edit, a removal or a reordering', async () => {
    const chains: Record<'edited' | 'removed' | 'reordered' | 'truncated', string> = { edited: '', removed: '', reordered: '', truncated: '' };
    for (const k of Object.keys(chains) as Array<keyof typeof chains>) {
      const acct = (await env.p.accounts.create(`Tamper ${k}`)).id;
      chains[k] = acct;
      for (let i = 0; i < 4; i++) await env.p.credentials.createKey(acct, { scopes: ['messages:read'], mode: 'test', name: `${k} ${i}` });
    }
    const clean = cli('audit', 'verify', '--json');
    assert.equal(clean.code, 0, clean.stderr);
    const cleanReport = JSON.parse(clean.stdout);
    assert.equal(cleanReport.ok, true);
    assert.ok(cleanReport.chains.length >= 5);

    const db = env.p.storage.db;
    await db.updateTable('audit_log').set({ details: '{"name":"edited 1","prefix":"sb_test_xxx","scopes":["admin"]}' }).where('chain', '=', chains.edited).where('seq', '=', 2).execute();
    await db.deleteFrom('audit_log').where('chain', '=', chains.removed).where('seq', '=', 2).execute();
    // Swap entries 2 and 3 (through a free seq, because (chain, seq) is unique).
    await db.updateTable('audit_log').set({ seq: -1 }).where('chain', '=', chains.reordered).where('seq', '=', 2).execute();
    await db.updateTable('audit_log').set({ seq: 2 }).where('chain', '=', chains.reordered).where('seq', '=', 3).execute();
    await db.updateTable('audit_log').set({ seq: 3 }).where('chain', '=', chains.reordered).where('seq', '=', -1).execute();
    await db.deleteFrom('audit_log').where('chain', '=', chains.truncated).where('seq', '=', 4).execute();
    await sql`select 1`.execute(db);

    const expected = { edited: ['hash_mismatch', 2], removed: ['missing_entry', 2], reordered: ['prev_hash_mismatch', 2], truncated: ['head_mismatch', 4] } as const;
    const all = cli('audit', 'verify', '--json');
    assert.equal(all.code, 1, 'exits non-zero');
    const report = JSON.parse(all.stdout);
    assert.equal(report.ok, false);
    for (const [k, [problem, seq]] of Object.entries(expected) as Array<[keyof typeof chains, readonly [string, number]]>) {
      const chain = report.chains.find((c: { chain: string }) => c.chain === chains[k]);
      assert.equal(chain.ok, false, k);
      assert.equal(chain.fault.problem, problem, k);
      assert.equal(chain.fault.seq, seq, k);
      assert.match(chain.fault.message, new RegExp(`entry ${seq}`), `${k}: the message names the entry`);
    }
    assert.equal(report.chains.find((c: { chain: string }) => c.chain === env.accountId).ok, true);
    // One account, in words: the edited entry is named by its seq and id.
    const edited = await db.selectFrom('audit_log').select('id').where('chain', '=', chains.edited).where('seq', '=', 2).executeTakeFirstOrThrow();
    const one = cli('audit', 'verify', '--account', chains.edited);
    assert.equal(one.code, 1);
    assert.match(one.stdout, new RegExp(`${chains.edited}: BROKEN at entry 2 \\(${edited.id}\\): hash_mismatch`));
    assert.match(one.stderr, new RegExp(`entry 2 \\(${edited.id}\\) was changed`));
    // The default account's chain is untouched.
    const def = cli('audit', 'verify', '--default', '--json');
    assert.equal(def.code, 0, def.stderr);
    assert.equal(JSON.parse(def.stdout).chains[0].chain, env.accountId);
  });
});
