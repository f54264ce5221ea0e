// Key rotation (issue 9): `switchboard keys rotate-encryption` re-seals everything under the new
// key in bounded batches while messages are being sent and read; the server reads both keys
// meanwhile; a dead worker's rotation is taken over once its lease expires and resumes where it
// stopped; afterwards the old key can go.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { keyIdOf } from '../src/security/crypto.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { PNG, wavFile } from './media-fixtures.ts';

const KEY_A = 'a1'.repeat(32);
const KEY_B = 'b2'.repeat(32);
const KEY_C = 'c3'.repeat(32);
const id = (hex: string) => keyIdOf(Buffer.from(hex, 'hex'));

/** Every sealed column's values counted by the key that sealed them. */
async function keysInUse(env: TestEnv): Promise<Set<string>> {
  const used = new Set<string>();
  for (const c of await env.p.keyRotation.census()) for (const k of Object.keys(c.counts)) used.add(k);
  return used;
}

describe('key rotation while the platform serves', () => {
  let env: TestEnv;
  const sent = new Map<string, string>();
  let webhookId = '';
  // Media files sealed under the first key: a rotation re-seals their bytes too.
  const files: Array<{ url: string; bytes: Buffer }> = [];
  const fetchFile = async (url: string) => {
    const res = await env.app.inject({ method: 'GET', url: new URL(url).pathname });
    assert.equal(res.statusCode, 200, url);
    return res.rawPayload;
  };

  before(async () => {
    env = await testEnv({ workers: true, config: { SWITCHBOARD_ENCRYPTION_KEY: KEY_A } });
    const hook = await env.req('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/nowhere' } });
    webhookId = hook.json().id;
    await env.req('POST', '/v1/connectors', { token: env.liveKey, body: { name: 'With a password', type: 'simulator', config: { password: 'rotate-me-secret' } } });
    for (let i = 0; i < 40; i++) {
      const body = `before rotation ${i} ${'·'.repeat(i % 7)}`;
      const res = await env.req('POST', '/v1/messages', { body: { to: sim(i % 10), body } });
      assert.equal(res.statusCode, 202, res.body);
      sent.set(res.json().id, body);
    }
    await eventually(async () => (await env.req('GET', '/v1/messages?status=delivered&limit=100')).json().data.length >= 40, 20_000, 'the first messages delivered');
    for (const [bytes, type] of [[PNG, 'image/png'], [wavFile(4000), 'audio/wav'], [Buffer.concat([PNG, Buffer.from('second picture')]), 'image/png']] as const) {
      const up = await env.app.inject({ method: 'POST', url: '/v1/media', headers: { 'content-type': type, authorization: `Bearer ${env.testKey}` }, payload: bytes });
      assert.equal(up.statusCode, 201, up.body);
      files.push({ url: up.json().url, bytes });
    }
  });
  after(() => env.close());

  test('with the new key primary and the old one kept, everything still reads', async () => {
    await env.restart({ config: { SWITCHBOARD_ENCRYPTION_KEY: KEY_B, SWITCHBOARD_ENCRYPTION_KEYS_OLD: KEY_A } });
    assert.equal(env.p.sealer.keyId, id(KEY_B));
    for (const [mid, body] of [...sent].slice(0, 5)) assert.equal((await env.req('GET', `/v1/messages/${mid}`)).json().body, body);
    for (const f of files) assert.deepEqual(await fetchFile(f.url), f.bytes);
    assert.ok((await keysInUse(env)).has(id(KEY_A)));
    const media = (await env.p.keyRotation.census()).find((c) => c.table === 'media');
    assert.deepEqual(media?.counts, { [id(KEY_A)]: 3 }, 'the census counts sealed media files');
  });

  test('a rotation runs in bounded batches while messages are sent and read, and ends with one key', async () => {
    const { rotation, created } = await env.p.keyRotation.request({ batchSize: 10 });
    assert.equal(created, true);
    assert.equal(rotation.target_key_id, id(KEY_B));
    assert.equal((await env.p.keyRotation.request()).created, false, 'asking again follows the same rotation');
    const ids = [...sent.keys()];
    let reads = 0;
    let traffic = true;
    const progress: number[] = [];
    const load = (async () => {
      for (let i = 0; traffic || i < 20; i++) {
        const body = `during rotation ${i}`;
        const res = await env.req('POST', '/v1/messages', { body: { to: sim(i % 10), body } });
        assert.equal(res.statusCode, 202, res.body);
        sent.set(res.json().id, body);
        const pick = ids[i % ids.length];
        const got = (await env.req('GET', `/v1/messages/${pick}`)).json();
        assert.equal(got.body, sent.get(pick), `read ${pick} during the rotation`);
        reads++;
        const events = await env.req('GET', `/v1/messages/${pick}/events`);
        assert.equal(events.statusCode, 200);
      }
    })();
    // The server's own worker runs it; the CLI's foreground mode follows the same row.
    const final = await env.p.keyRotation.follow(rotation.id, (v) => progress.push(v.scanned), 20);
    traffic = false;
    await load;
    assert.equal(final.status, 'completed', JSON.stringify(final));
    assert.equal(final.unreadable, 0);
    assert.ok(final.resealed >= 40, `re-sealed ${final.resealed}`);
    assert.ok(reads >= 20);
    assert.ok(new Set(progress).size > 3, 'progress was reported batch by batch');
    await eventually(async () => (await env.req('GET', '/v1/messages?status=delivered&limit=1000')).json().data.length >= sent.size, 20_000, 'everything delivered');
    const used = await keysInUse(env);
    assert.deepEqual([...used], [id(KEY_B)], `keys still in use: ${[...used].join(', ')}`);
  });

  test('after the rotation the old key can go: everything reads with the new key alone', async () => {
    await env.restart({ config: { SWITCHBOARD_ENCRYPTION_KEY: KEY_B, SWITCHBOARD_ENCRYPTION_KEYS_OLD: undefined } });
    assert.deepEqual(env.p.sealer.ids(), [id(KEY_B)]);
    for (const [mid, body] of sent) assert.equal((await env.req('GET', `/v1/messages/${mid}`)).json().body, body);
    const conn = (await env.req('GET', '/v1/connectors', { token: env.liveKey })).json().data.find((c: { name: string }) => c.name === 'With a password');
    assert.deepEqual(conn.secrets_set, ['password']);
    assert.equal((await env.p.connectors.row(conn.id))!.config.password, 'rotate-me-secret');
    assert.equal((await env.req('GET', `/v1/webhooks/${webhookId}`)).statusCode, 200);
    for (const f of files) assert.deepEqual(await fetchFile(f.url), f.bytes, 'media bytes re-sealed under the new key');
  });

  test('the CLI rotates to a third key and reports it as JSON, with the server running', async () => {
    const run = (args: string[], keys: Record<string, string>) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
        env: { PATH: process.env.PATH, DATABASE_URL: env.dbPath, LOG_LEVEL: 'warn', ...keys },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const r = run(['keys', 'rotate-encryption', '--batch', '25', '--json'], { SWITCHBOARD_ENCRYPTION_KEY: KEY_C, SWITCHBOARD_ENCRYPTION_KEYS_OLD: KEY_B });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.status, 'completed');
    assert.equal(out.target_key_id, id(KEY_C));
    assert.equal(out.unreadable, 0);
    const s = run(['keys', 'encryption-status', '--json'], { SWITCHBOARD_ENCRYPTION_KEY: KEY_C });
    assert.equal(s.status, 0, s.stderr);
    const status = JSON.parse(s.stdout);
    const used = new Set(status.columns.flatMap((c: { counts: Record<string, number> }) => Object.keys(c.counts)));
    assert.deepEqual([...used], [id(KEY_C)]);
  });
});

describe('a rotation survives its worker', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock, config: { SWITCHBOARD_ENCRYPTION_KEY: KEY_A } });
    for (let i = 0; i < 30; i++) assert.equal((await env.req('POST', '/v1/messages', { body: { to: sim(0), body: `m${i}` } })).statusCode, 202);
    await env.p.runDue();
    await env.restart({ config: { SWITCHBOARD_ENCRYPTION_KEY: KEY_B, SWITCHBOARD_ENCRYPTION_KEYS_OLD: KEY_A } });
  });
  after(() => env.close());

  test('a dead worker holds the lease until it expires; then another resumes from the saved position', async () => {
    const { rotation } = await env.p.keyRotation.request({ batchSize: 5 });
    for (let i = 0; i < 3; i++) assert.ok((await env.p.keyRotation.runOnce()) > 0);
    const mid = (await env.p.keyRotation.get(rotation.id))!;
    assert.equal(mid.scanned, 15);
    // A worker that died mid-rotation: its lease is live and nobody renews it.
    await env.p.storage.db.updateTable('key_rotations').set({ lease_owner: 'worker_dead', lease_expires_at: clock.now() + 60_000 }).where('id', '=', rotation.id).execute();
    await env.restart({ clock });
    assert.equal(await env.p.keyRotation.runOnce(), 0, 'the live lease of another worker is respected');
    clock.advance(60_001);
    assert.ok((await env.p.keyRotation.runOnce()) > 0, 'taken over once the lease expired');
    const resumed = (await env.p.keyRotation.get(rotation.id))!;
    assert.equal(resumed.scanned, 20, 'resumed after the 15 rows already done, not from the start');
    for (let i = 0; i < 500 && (await env.p.keyRotation.get(rotation.id))!.status === 'running'; i++) await env.p.keyRotation.runOnce();
    const done = (await env.p.keyRotation.get(rotation.id))!;
    assert.equal(done.status, 'completed');
    assert.deepEqual([...(await keysInUse(env))], [id(KEY_B)]);
    const list = (await env.req('GET', '/v1/messages?limit=100')).json().data as Array<{ body: string }>;
    assert.equal(list.length, 30);
    assert.deepEqual(new Set(list.map((m) => m.body)), new Set(Array.from({ length: 30 }, (_, i) => `m${i}`)));
  });

  test('values written before encryption existed are sealed by the rotation an upgrade asks for', async () => {
    const raw = env.p.storage.db.withoutPlugins();
    const row = await raw.selectFrom('messages').select(['id']).limit(1).executeTakeFirstOrThrow();
    // As an old version stored it: plain text.
    await raw.updateTable('messages').set({ body: 'written in plain text long ago' }).where('id', '=', row.id).execute();
    assert.equal((await env.req('GET', `/v1/messages/${row.id}`)).json().body, 'written in plain text long ago', 'plain values still read');
    assert.ok((await keysInUse(env)).has('plain'));
    const { rotation } = await env.p.keyRotation.request();
    while ((await env.p.keyRotation.get(rotation.id))!.status === 'running') await env.p.keyRotation.runOnce();
    assert.deepEqual([...(await keysInUse(env))], [id(KEY_B)]);
    assert.equal((await env.req('GET', `/v1/messages/${row.id}`)).json().body, 'written in plain text long ago');
  });

  test('media files stored in plain bytes (before 016) are sealed by a rotation, and still served', async () => {
    const up = await env.app.inject({ method: 'POST', url: '/v1/media', headers: { 'content-type': 'image/png', authorization: `Bearer ${env.testKey}` }, payload: PNG });
    assert.equal(up.statusCode, 201, up.body);
    const raw = env.p.storage.db.withoutPlugins();
    const sealed = (await raw.selectFrom('media').select('data').where('id', '=', up.json().id).executeTakeFirstOrThrow()).data;
    assert.equal(Buffer.from(sealed).subarray(0, 12).toString('latin1'), `v2:${id(KEY_B)}:`);
    assert.ok(!Buffer.from(sealed).includes(PNG), 'the stored bytes are not the file');
    await raw.updateTable('media').set({ data: PNG }).where('id', '=', up.json().id).execute();
    const path = new URL(up.json().url).pathname;
    assert.deepEqual((await env.app.inject({ method: 'GET', url: path })).rawPayload, PNG, 'plain bytes still served');
    assert.deepEqual((await env.p.keyRotation.census()).find((c) => c.table === 'media')?.counts, { plain: 1 });
    const { rotation } = await env.p.keyRotation.request();
    while ((await env.p.keyRotation.get(rotation.id))!.status === 'running') await env.p.keyRotation.runOnce();
    assert.deepEqual((await env.p.keyRotation.census()).find((c) => c.table === 'media')?.counts, { [id(KEY_B)]: 1 });
    assert.deepEqual((await env.app.inject({ method: 'GET', url: path })).rawPayload, PNG);
  });
});
