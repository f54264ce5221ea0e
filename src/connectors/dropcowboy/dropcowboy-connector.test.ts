// Drop Cowboy ringless voicemail through the whole platform, against the fake Drop Cowboy on
// 127.0.0.1: the send's documented fields, audio uploaded to /v1/media or rendered from the text
// by espeak-ng and fetched by the fake from our public URL, results by the token-carrying
// callback and by the signed webhook, and the reason codes' classes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROVIDER_SENDER, connectProvider, freePort, messageReader } from '../../../test/provider-harness.ts';
import { testEnv, type TestEnv } from '../../../test/helpers.ts';
import { wavFile } from '../../../test/media-fixtures.ts';
import { readWav } from '../../media/media-types.ts';
import { DROPCOWBOY_REASONS, dropCowboyReceipt, dropCowboySignature, idempotencyKey, validateDropCowboyConfig } from './dropcowboy-connector.ts';
import { DropCowboyFake } from './dropcowboy-fake.ts';

describe('Drop Cowboy mapping (no sockets)', () => {
  test('the webhook signature is the documented HMAC-SHA256 over timestamp "." raw body (Drop Cowboy’s own test vector)', () => {
    const raw =
      '{"event_id":"2694f968-93fd-44ca-9b92-2110ed1ee61e","event":"contact.rvm.status","event_at":1774041912000,"data":{"team_id":"3f6c2a1e-8b4d-4c7a-9e2f-5a1b3c4d6e7f","contact_id":"5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d","drop_id":"b3e7a1c9-8d5f-4b2e-9a6c-1f4d7b3e8a52","campaign_id":null,"campaign_type":"rvm","status":"success","reason":"","reason_code":0,"to":"+13125550142","from":"+12125550100"}}';
    assert.equal(dropCowboySignature('e4b1c7a9-3f2d-4e8b-9a6c-5d1f8b2e7c30', '1774041960', raw), 'sha256=e85f619d16c3a6ccdb54846a3d7fdf556fd9703c5d94b76740b7bb7470b1bebc');
    assert.equal(dropCowboySignature('7d2f9b4e-6a1c-4f83-b5e0-9c3a8d1f6e42', '1774041960', raw), 'sha256=59719257b2a6653aa4cc5c6ebaab15d93291316fb5b5789d6895f24d13b8c4cd');
  });

  test('reason codes: success is a voicemail left; failures map to status, class and outcome', () => {
    const r = (status: string, reason_code: number) => dropCowboyReceipt('m1', { status, reason_code }, {})!;
    assert.deepEqual([r('success', 0).status, r('success', 0).voice?.outcome], ['delivered', 'machine']);
    const rows: Array<[number, string, string, string]> = [
      [4005, 'undelivered', 'UNREACHABLE', 'no_answer'],
      [4006, 'undelivered', 'UNREACHABLE', 'busy'],
      [4002, 'undelivered', 'UNREACHABLE', 'failed'],
      [4016, 'failed', 'OPTED_OUT', 'failed'],
      [4019, 'failed', 'INVALID_NUMBER', 'failed'],
      [3007, 'failed', 'AUTH_FAILED', 'failed'],
      [6000, 'failed', 'FILTERED', 'failed'],
      [4013, 'failed', 'RATE_LIMITED', 'failed'],
      [9999, 'failed', 'UNKNOWN_ERROR', 'failed'],
    ];
    for (const [code, status, cls, outcome] of rows) assert.deepEqual([r('failure', code).status, r('failure', code).errorClass, r('failure', code).voice?.outcome], [status, cls, outcome], String(code));
    for (const v of Object.values(DROPCOWBOY_REASONS)) assert.ok(v.meaning);
  });

  test('the Idempotency-Key is a stable UUID per message; config is checked without echoing secrets', () => {
    const k = idempotencyKey('conn_1', 'msg_1');
    assert.match(k, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(idempotencyKey('conn_1', 'msg_1'), k);
    assert.notEqual(idempotencyKey('conn_1', 'msg_2'), k);
    assert.deepEqual(validateDropCowboyConfig({}), ['api_key is required', 'api_secret is required']);
    const errors = validateDropCowboyConfig({ api_key: 'k', api_secret: 'very-secret-value', base_url: 'ftp://x', caller_id_from_sender: 'yes' });
    assert.deepEqual(errors, ['base_url must be an http(s) URL', 'caller_id_from_sender must be true or false']);
    assert.ok(!errors.join(' ').includes('very-secret-value'));
  });
});

describe('Drop Cowboy through the platform', () => {
  const fake = new DropCowboyFake();
  const LINE = '2b8f5d1a-7c3e-4a9b-9f6d-4e2a8c1b7d53';
  let env: TestEnv;
  let base = '';
  let connectorId = '';
  const { get, settled } = messageReader(() => env);
  const drop = async (to: string, extra: Record<string, unknown> = {}) => {
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to, from: PROVIDER_SENDER, channel: 'rvm', ...extra } });
    assert.equal(res.statusCode, 202, res.body);
    const sent = await settled(res.json().id as string, ['sent', 'failed']);
    const d = fake.drops.find((x) => x.messageId === sent.provider_message_id);
    return { id: sent.id as string, sent, drop: d! };
  };
  const events = async (id: string) => (await env.req('GET', `/v1/messages/${id}/events`, { token: env.liveKey })).json().data as Array<{ status: string; ignored: boolean; data: Record<string, any> }>;

  before(async () => {
    await fake.start();
    const port = await freePort();
    env = await testEnv({ workers: true, config: { SWITCHBOARD_PUBLIC_URL: `http://127.0.0.1:${port}` } });
    let created: string;
    ({ base, connectorId, createdBody: created } = await connectProvider(env, {
      name: 'Drop Cowboy',
      type: 'dropcowboy',
      capabilities: ['rvm'],
      port,
      config: (b) => ({ api_key: fake.key, api_secret: fake.secret, webhook_secret: fake.signingSecret, phone_line_id: LINE, base_url: fake.url, webhook_base_url: b }),
    }));
    assert.ok(!created.includes(fake.secret) && !created.includes(fake.signingSecret), 'secrets are not returned');
    fake.webhookUrl = `${base}/hooks/${connectorId}/status`;
  });
  after(async () => {
    await env.close();
    await fake.stop();
  });

  test('an uploaded audio file: the documented fields; the callback (with its token) leaves the message delivered, machine', async () => {
    const up = await env.app.inject({ method: 'POST', url: '/v1/media', headers: { authorization: `Bearer ${env.liveKey}`, 'content-type': 'audio/wav' }, payload: wavFile() });
    assert.equal(up.statusCode, 201, up.body);
    const audio = up.json().url as string;
    const { id, sent, drop: d } = await drop('+14155550160', { media_urls: [audio] });
    assert.equal(sent.status, 'sent');
    assert.equal(sent.connector_id, connectorId);
    assert.deepEqual(Object.keys(d.body).sort(), ['audio_url', 'callback_url', 'foreign_id', 'phone_line_id', 'to']);
    assert.equal(d.body.to, '+14155550160');
    assert.equal(d.body.phone_line_id, LINE);
    assert.equal(d.body.audio_url, audio);
    assert.equal(d.body.foreign_id, id);
    assert.match(String(d.body.callback_url), new RegExp(`^${base}/hooks/${connectorId}/status\\?t=[A-Za-z0-9_-]{43}$`));
    assert.equal(d.headers['x-key'], fake.key);
    assert.equal(d.headers['x-secret'], fake.secret);
    assert.equal(d.idempotencyKey, idempotencyKey(connectorId, id));
    const fetched = await fake.downloadAudio(d);
    assert.deepEqual([fetched.status, fetched.contentType], [200, 'audio/wav']);

    const res = await fake.callback(d, 0);
    assert.equal(res.status, 200);
    const done = await settled(id, ['delivered']);
    assert.deepEqual(done.voice, { outcome: 'machine', duration_s: null, answered_by: 'machine' });
    const last = (await events(id)).at(-1)!;
    assert.equal(last.data.raw.reason_code, 0);
    assert.ok(last.data.raw.proof_of_delivery_url);

    // The signed webhook for the same drop comes too: recorded, and changes nothing.
    assert.equal((await fake.webhook(d, 0)).status, 200);
    const timeline = await events(id);
    assert.equal(timeline.at(-1)!.ignored, true);
    assert.equal((await get(id)).status, 'delivered');
  });

  test('a text is spoken by espeak-ng: the fake downloads an 8 kHz mono 16-bit WAV from our public URL; the same text is rendered once', async () => {
    const text = 'Hi, this is Northside Pharmacy. Your prescription is ready for pickup.';
    const a = await drop('+14155550161', { body: text });
    const audioUrl = String(a.drop.body.audio_url);
    assert.match(audioUrl, new RegExp(`^${base}/media/media_[0-9a-z]{26}/[A-Za-z0-9_-]+$`));
    const fetched = await fake.downloadAudio(a.drop);
    assert.deepEqual([fetched.status, fetched.contentType], [200, 'audio/wav']);
    const wav = readWav(fetched.data)!;
    assert.ok(wav, 'a RIFF/WAVE file');
    assert.deepEqual([wav.format, wav.sampleRate, wav.channels, wav.bitsPerSample], [1, 8000, 1, 16]);
    assert.ok(wav.dataBytes > 8000 * 2, `at least a second of speech (${wav.dataBytes} bytes)`);
    const sendingEvent = (await events(a.id)).find((e) => e.status === 'sent')!;
    assert.equal(sendingEvent.data.raw.tts.content_type, 'audio/wav');
    const b = await drop('+14155550162', { body: text });
    assert.equal(b.drop.body.audio_url, audioUrl, 'the rendered audio is reused');
    const media = await env.req('GET', `/v1/media/${sendingEvent.data.raw.tts.media_id}`, { token: env.liveKey });
    assert.equal(media.json().source, 'tts');
  });

  test('results by the signed webhook, matched on `to`: busy is undelivered UNREACHABLE; DNC is failed OPTED_OUT and suppresses the number', async () => {
    const busy = await drop('+14155550163', { body: 'Call us back.' });
    const dnc = await drop('+14155550164', { body: 'Call us back.' });
    assert.equal((await fake.webhook(busy.drop, 4006)).status, 200);
    assert.equal((await fake.webhook(dnc.drop, 4016)).status, 200);
    const b = await settled(busy.id, ['undelivered']);
    const d = await settled(dnc.id, ['failed']);
    assert.equal(`${b.error.class}/${b.error.provider_code}/${b.voice.outcome}`, 'UNREACHABLE/4006/busy');
    assert.equal(`${d.error.class}/${d.error.provider_code}/${d.voice.outcome}`, 'OPTED_OUT/4016/failed');
    const again = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+14155550164', channel: 'rvm', body: 'x' } });
    assert.equal(again.json().error.code, 'OPTED_OUT');
  });

  test('a webhook with a wrong signature, a stale timestamp or another version, and a callback without its token, are 401 and change nothing', async () => {
    const { id, drop: d } = await drop('+14155550165', { body: 'Reminder.' });
    for (const res of [
      await fake.webhook(d, 0, { signWith: 'not-the-secret' }),
      await fake.webhook(d, 0, { timestamp: Math.floor(Date.now() / 1000) - 600 }),
      await fake.webhook(d, 0, { version: 'v2' }),
      await fake.callback(d, 0, { url: `${base}/hooks/${connectorId}/status` }),
      await fake.callback(d, 0, { url: `${base}/hooks/${connectorId}/status?t=forged` }),
    ]) {
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    }
    // A real token, but for another message: the token is bound to the foreign_id it came with.
    const other = await drop('+14155550166', { body: 'Reminder.' });
    const swapped = await fake.callback(d, 0, { url: String(other.drop.body.callback_url) });
    assert.equal(swapped.status, 401);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await get(id)).status, 'sent');
    assert.equal((await get(other.id)).status, 'sent');
  });

  test('a wrong secret is accepted by the API and fails with 3007 in the callback: failed, AUTH_FAILED', async () => {
    const created = await env.req('POST', '/v1/connectors', {
      body: { name: 'Drop Cowboy (bad secret)', type: 'dropcowboy', config: { api_key: fake.key, api_secret: 'wrong-secret', base_url: fake.url, webhook_base_url: base } },
    });
    assert.equal(created.statusCode, 201, created.body);
    const route = await env.req('POST', '/v1/routes', { body: { priority: 0, filters: { prefix: '+1415555017' }, connector_id: created.json().id } });
    assert.equal(route.statusCode, 201, route.body);
    await new Promise((r) => setTimeout(r, 2100)); // the route table is cached for 2 s
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+14155550170', channel: 'rvm', media_urls: ['https://cdn.example.com/a.mp3'] } });
    assert.equal(res.statusCode, 202, res.body);
    const sent = await settled(res.json().id, ['sent']);
    const d = fake.drops.find((x) => x.messageId === sent.provider_message_id)!;
    assert.equal(d.credentialsOk, false);
    assert.equal((await fake.callback(d, 0)).status, 200);
    const failed = await settled(sent.id, ['failed']);
    assert.equal(`${failed.error.class}/${failed.error.provider_code}`, 'AUTH_FAILED/3007');
  });

  test('a throttled send (429) is retried with the same Idempotency-Key: one voicemail', async () => {
    const before = fake.requests;
    fake.throttle = 1;
    const { id, drop: d } = await drop('+14155550167', { media_urls: ['https://cdn.example.com/b.mp3'] });
    assert.equal(fake.requests - before, 2);
    assert.equal(fake.drops.filter((x) => x.body.foreign_id === id).length, 1);
    assert.equal(d.idempotencyKey, idempotencyKey(connectorId, id));
    const attempts = (await events(id)).filter((e) => e.status === 'sending').length;
    assert.equal(attempts, 2);
  });

  test('Drop Cowboy carries rvm only: a voice message skips it for the next route (here the simulator)', async () => {
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+14155550168', channel: 'voice', body: 'hello' } });
    assert.equal(res.statusCode, 202, res.body);
    const m = await settled(res.json().id, ['delivered']);
    assert.equal(m.connector_id, 'conn_simulator');
  });
});
