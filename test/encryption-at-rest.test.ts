// Encryption at rest (issue 9): message bodies, media URLs and media files, raw provider payloads,
// webhook payloads and secrets, connector credentials, Twilio auth tokens, TOTP secrets and the
// OAuth signing key are sealed in the database; the API shows them in plain text. The test reads
// the SQLite file and its WAL byte for byte (on PostgreSQL, every text and bytea column of every
// table through SQL) and looks for the plain text.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../src/clock.ts';
import { Keyring } from '../src/security/crypto.ts';
import { Secret, TOTP } from 'otpauth';
import { DIALECT, sim, testEnv, type TestEnv } from './helpers.ts';
import { PNG, wavFile } from './media-fixtures.ts';
import { person } from './people-helpers.ts';
import { Receiver } from './webhook-receiver.ts';

const marker = (what: string) => `${what}-${randomBytes(6).toString('hex')}`;

/** Every stored byte: the SQLite file and its WAL, or on PostgreSQL every text value of every table. */
export async function storedText(env: TestEnv): Promise<string> {
  if (DIALECT === 'sqlite') {
    // A checkpoint would move WAL pages into the file; both are read, so nothing is missed either way.
    return [env.dbPath, `${env.dbPath}-wal`]
      .map((f) => {
        try {
          return readFileSync(f).toString('latin1');
        } catch {
          return '';
        }
      })
      .join('\n');
  }
  const raw = env.p.storage.db.withoutPlugins();
  const cols = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns
    where table_schema = 'public' and data_type in ('text', 'character varying', 'json', 'jsonb')`.execute(raw);
  const parts: string[] = [];
  for (const c of cols.rows) {
    const r = await sql<{ v: string | null }>`select ${sql.ref(c.column_name)}::text as v from ${sql.table(c.table_name)}`.execute(raw);
    for (const row of r.rows) if (row.v) parts.push(row.v);
  }
  // Binary columns (media bytes) as the bytes they hold.
  const blobs = await sql<{ table_name: string; column_name: string }>`
    select table_name, column_name from information_schema.columns where table_schema = 'public' and data_type = 'bytea'`.execute(raw);
  for (const c of blobs.rows) {
    const r = await sql<{ v: Buffer | null }>`select ${sql.ref(c.column_name)} as v from ${sql.table(c.table_name)}`.execute(raw);
    for (const row of r.rows) if (row.v) parts.push(Buffer.from(row.v).toString('latin1'));
  }
  return parts.join('\n');
}

describe('encryption at rest', () => {
  const clock = new ManualClock(Date.now());
  const rx = new Receiver();
  let env: TestEnv;
  const body = marker('outbound body PLAINTEXT');
  const inboundBody = marker('inbound reply PLAINTEXT');
  const mediaUrl = `https://media.example.com/${marker('scan')}.png`;
  const password = marker('connector-password');
  let webhookSecret = '';
  let twilioToken = '';
  let totpSecret = '';
  let pendingTotpSecret = '';
  // Media bytes: a PNG and a WAV carrying a recognisable run of text, as a scan or a recorded
  // voicemail would carry what is in it.
  const imageText = marker('image bytes PLAINTEXT');
  const audioText = marker('audio bytes PLAINTEXT');
  const image = Buffer.concat([PNG, Buffer.from(`tEXtComment\0${imageText}`, 'latin1')]);
  const audio = Buffer.concat([wavFile(200), Buffer.from(audioText, 'latin1')]);
  const mediaUrls: string[] = [];
  let sentId = '';
  let mmsId = '';
  let inboundId = '';

  const settle = async () => {
    for (let i = 0; i < 8; i++) {
      await env.p.runDue();
      clock.advance(500);
    }
  };

  before(async () => {
    env = await testEnv({ clock });
    await rx.start();
    const hook = await env.req('POST', '/v1/webhooks', { body: { url: rx.url } });
    assert.equal(hook.statusCode, 201, hook.body);
    webhookSecret = hook.json().secret;
    // Status callbacks are signed with the account's callback secret.
    rx.secrets = [webhookSecret, (await env.req('GET', '/v1/webhooks/callback-secret')).json().secret];
    const conn = await env.req('POST', '/v1/connectors', { token: env.liveKey, body: { name: 'Sealed carrier', type: 'simulator', config: { password } } });
    assert.equal(conn.statusCode, 201, conn.body);

    const sent = await env.req('POST', '/v1/messages', { body: { to: sim(0), body, status_callback: `${rx.url}?cb=1` } });
    assert.equal(sent.statusCode, 202, sent.body);
    sentId = sent.json().id;
    const mms = await env.req('POST', '/v1/messages', { body: { to: sim(1), channel: 'mms', body: 'see attached', media_urls: [mediaUrl] } });
    assert.equal(mms.statusCode, 202, mms.body);
    mmsId = mms.json().id;
    const inbound = await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(0), body: inboundBody } });
    assert.equal(inbound.statusCode, 201, inbound.body);
    inboundId = inbound.json().id;
    // An OAuth token makes the signing key exist.
    const client = (await env.req('POST', '/v1/clients', { body: { scopes: ['messages:read'], mode: 'test' } })).json();
    const tok = await env.req('POST', '/oauth/token', { payload: `grant_type=client_credentials&client_id=${client.client_id}&client_secret=${client.client_secret}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, token: null });
    assert.equal(tok.statusCode, 200, tok.body);
    // The Twilio-compatible auth token (sealed: it signs callbacks), rotated once so both the
    // first and the current one were written.
    const firstToken = (await env.req('GET', '/v1/twilio/credentials')).json().auth_token;
    twilioToken = (await env.req('POST', '/v1/twilio/credentials', { body: { rotate: true } })).json().auth_token;
    assert.notEqual(firstToken, twilioToken);
    // TOTP secrets: one enrolled and verified, one pending.
    const admin = await person(env, 'admin', { mode: 'test' });
    totpSecret = (await admin.req('POST', '/v1/users/me/totp')).json().secret;
    const totp = new TOTP({ secret: Secret.fromBase32(totpSecret), algorithm: 'SHA1', digits: 6, period: 30 });
    assert.equal((await admin.req('POST', '/v1/users/me/totp/verify', { code: totp.generate({ timestamp: clock.now() }) })).statusCode, 200);
    pendingTotpSecret = (await (await person(env, 'agent', { mode: 'test' })).req('POST', '/v1/users/me/totp')).json().secret;
    assert.match(pendingTotpSecret, /^[A-Z2-7]{16,}$/);
    for (const [bytes, type] of [[image, 'image/png'], [audio, 'audio/wav']] as const) {
      const up = await env.app.inject({ method: 'POST', url: '/v1/media', headers: { 'content-type': type, authorization: `Bearer ${env.testKey}` }, payload: bytes });
      assert.equal(up.statusCode, 201, up.body);
      mediaUrls.push(up.json().url);
    }
    await settle();
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  test('the API and the webhooks show everything in plain text', async () => {
    const m = (await env.req('GET', `/v1/messages/${sentId}`)).json();
    assert.equal(m.body, body);
    assert.equal(m.status, 'delivered');
    assert.deepEqual((await env.req('GET', `/v1/messages/${mmsId}`)).json().media_urls, [mediaUrl]);
    const inbound = (await env.req('GET', `/v1/messages/${inboundId}`)).json();
    assert.equal(inbound.body, inboundBody);
    const events = (await env.req('GET', `/v1/messages/${inboundId}/events`)).json().data;
    assert.equal(events[0].status, 'received');
    const delivered = rx.received.filter((r) => r.messageId === sentId);
    assert.ok(delivered.length >= 3, `webhooks for the message: ${delivered.length}`);
    assert.ok(delivered.every((r) => r.verified));
    assert.equal(delivered[0].body.data.body, body);
    assert.ok(rx.received.some((r) => r.type === 'message.received' && r.body.data.body === inboundBody));
    assert.ok(rx.received.some((r) => r.headers['webhook-id'] && String(r.body.data.id) === sentId && r.body.type === 'message.delivered'));
    // Media files are served as uploaded, from the public URL.
    for (const [url, bytes] of [[mediaUrls[0], image], [mediaUrls[1], audio]] as const) {
      const res = await env.app.inject({ method: 'GET', url: new URL(url).pathname });
      assert.equal(res.statusCode, 200);
      assert.deepEqual(res.rawPayload, bytes);
    }
  });

  test('no body, media URL, secret or credential is in the database in plain text', async () => {
    const oauthKey = (await env.p.storage.db.selectFrom('settings').select('value').where('key', '=', 'oauth_signing_key').executeTakeFirstOrThrow()).value;
    assert.match(oauthKey, /^[0-9a-f]{64}$/, 'read through the storage layer, the key is plain');
    const callbackSecret = (await env.req('GET', '/v1/webhooks/callback-secret')).json().secret;
    const stored = await storedText(env);
    assert.ok(stored.length > 10_000, 'read something');
    for (const [what, plain] of Object.entries({ body, inboundBody, mediaUrl, password, webhookSecret, callbackSecret, oauthKey, twilioToken, totpSecret, pendingTotpSecret, imageText, audioText })) {
      assert.ok(!stored.includes(plain), `${what} is in the database in plain text`);
    }
    // The marker words are in none of the columns either (a part of a body, a JSON-escaped one).
    assert.ok(!stored.includes('PLAINTEXT'), 'a fragment of a body is stored in plain text');
    assert.ok(!stored.includes(password.slice(0, 18)), 'a fragment of the password is stored in plain text');
  });

  test('the stored values are sealed with the configured key, and the context binds them to their column', async () => {
    const raw = env.p.storage.db.withoutPlugins();
    const row = await raw.selectFrom('messages').select(['body']).where('id', '=', sentId).executeTakeFirstOrThrow();
    assert.match(row.body!, new RegExp(`^v2:${env.p.sealer.keyId}:`));
    // The same ciphertext does not open as another column.
    assert.equal(env.p.sealer.tryOpen(row.body!, ['messages.body']).ok, true);
    assert.equal(env.p.sealer.tryOpen(row.body!, ['template_versions.body']).ok, false);
    // Another keyring cannot open it at all.
    assert.equal(new Keyring(randomBytes(32)).tryOpen(row.body!, ['messages.body']).ok, false);
  });

  test('a stolen ciphertext sent as a body is sealed again, never opened for the sender', async () => {
    const raw = env.p.storage.db.withoutPlugins();
    const stolen = (await raw.selectFrom('messages').select(['body']).where('id', '=', sentId).executeTakeFirstOrThrow()).body!;
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(2), body: stolen.slice(0, 1600) } });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().body, stolen.slice(0, 1600));
    const again = (await env.req('GET', `/v1/messages/${res.json().id}`)).json();
    assert.equal(again.body, stolen.slice(0, 1600), 'shown as sent, not decrypted');
    const contact = await env.req('POST', '/v1/contacts', { body: { phone: sim(3), name: stolen.slice(0, 200) } });
    if (contact.statusCode === 201) assert.equal(contact.json().name, stolen.slice(0, 200));
  });
});
