// The Telnyx connector through the whole platform, against a fake Telnyx on 127.0.0.1 that
// follows the documented request and webhook shapes and signs its webhooks with Ed25519.
import { PROVIDER_SENDER, connectProvider, messageReader } from '../../../test/provider-harness.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../clock.ts';
import { eventually, testEnv, type TestEnv } from '../../../test/helpers.ts';
import { TelnyxConnector, telnyxReceipt, validateTelnyxConfig } from './telnyx-connector.ts';
import { TelnyxFake } from './telnyx-fake.ts';

describe('Telnyx mapping (no sockets)', () => {
  test('finalized statuses become receipts; delivery error codes become classes', () => {
    const to = (status: string) => [{ phone_number: '+14155550123', status }];
    assert.equal(telnyxReceipt({ id: 'm1', to: to('sent') }), null);
    assert.equal(telnyxReceipt({ id: 'm1', to: to('delivery_unconfirmed') }), null);
    assert.equal(telnyxReceipt({ id: 'm1', to: to('delivered') })!.status, 'delivered');
    const classes = ['40001', '40002', '40006', '40008', '40300', '99999'].map((code) => telnyxReceipt({ id: 'm1', to: to('delivery_failed'), errors: [{ code }] })!.errorClass);
    assert.deepEqual(classes, ['INVALID_NUMBER', 'FILTERED', 'UNREACHABLE', 'UNKNOWN_ERROR', 'OPTED_OUT', 'UNKNOWN_ERROR']);
    assert.equal(telnyxReceipt({ id: 'm1', to: to('sending_failed'), errors: [{ code: '40310' }] })!.status, 'failed');
    assert.equal(telnyxReceipt({ id: 'm1', to: to('expired') })!.errorClass, 'UNREACHABLE');
  });

  test('config: api_key and a usable Ed25519 public_key; the key is never echoed', () => {
    assert.deepEqual(validateTelnyxConfig({}), ['api_key is required', 'public_key is required']);
    const errors = validateTelnyxConfig({ api_key: 'KEYsecret-1', public_key: 'not-a-key', base_url: 'nope' });
    assert.deepEqual(errors, ['public_key must be the Ed25519 public key from the Telnyx portal (base64)', 'base_url must be an http(s) URL']);
    assert.ok(!errors.join(' ').includes('KEYsecret-1'));
  });
});

describe('Telnyx through the platform', () => {
  const fake = new TelnyxFake();
  let env: TestEnv;
  let base = '';
  let connectorId = '';
  const SENDER = PROVIDER_SENDER;
  const { get, settled } = messageReader(() => env);
  const send = async (to: string, extra: Record<string, unknown> = {}) => {
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to, from: SENDER, body: `hello ${to}`, ...extra } });
    assert.equal(res.statusCode, 202, res.body);
    return res.json().id as string;
  };

  before(async () => {
    await fake.start();
    env = await testEnv({ workers: true });
    let created: string;
    ({ base, connectorId, createdBody: created } = await connectProvider(env, { name: 'Telnyx', type: 'telnyx', capabilities: ['sms', 'mms'], config: (base) => ({ api_key: fake.apiKey, public_key: fake.publicKey, base_url: fake.url, webhook_base_url: base }) }));
    assert.ok(!created.includes(fake.apiKey), 'the API key is not returned');
  });
  after(async () => {
    await env.close();
    await fake.stop();
  });

  test('send: the fake gets the documented fields; the message is sent with Telnyx’s id; message.finalized delivered delivers it', async () => {
    const id = await send('+14155550123', { channel: 'mms', media_urls: ['https://example.com/a.jpg'] });
    const sent = await settled(id, ['sent']);
    const at = fake.messages.find((m) => m.id === sent.provider_message_id);
    assert.ok(at, 'the fake holds the message under the id we recorded');
    assert.deepEqual(
      { to: at.body.to, from: at.body.from, text: at.body.text, media_urls: at.body.media_urls, webhook_url: at.body.webhook_url },
      { to: '+14155550123', from: SENDER, text: 'hello +14155550123', media_urls: ['https://example.com/a.jpg'], webhook_url: `${base}/hooks/${connectorId}/status` },
    );
    assert.equal((await fake.finalized(at.id, 'sent')).status, 200);
    assert.equal((await get(id)).status, 'sent');
    assert.equal((await fake.finalized(at.id, 'delivered')).status, 200);
    await settled(id, ['delivered']);
  });

  test('delivery_failed with error 40001 ends undelivered, INVALID_NUMBER', async () => {
    const id = await send('+14155550125');
    const sent = await settled(id, ['sent']);
    await fake.finalized(sent.provider_message_id, 'delivery_failed', { errors: [{ code: '40001', title: 'Not routable', detail: 'Destination is a landline' }] });
    const m = await settled(id, ['undelivered', 'failed', 'expired']);
    assert.equal(`${m.status}/${m.error.class}/${m.error.provider_code}`, 'undelivered/INVALID_NUMBER/40001');
  });

  test('a webhook signed with another key, or too old, is 401 AUTH_FAILED and changes nothing', async () => {
    const id = await send('+14155550127');
    const sent = await settled(id, ['sent']);
    const forged = await fake.finalized(sent.provider_message_id, 'delivered', { wrongKey: true });
    assert.equal(forged.status, 401);
    assert.equal(((await forged.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    const replayed = await fake.finalized(sent.provider_message_id, 'delivered', { timestamp: Math.floor(Date.now() / 1000) - 600 });
    assert.equal(replayed.status, 401);
    const forgedInbound = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155559999', to: SENDER, text: 'forged' }, { wrongKey: true });
    assert.equal(forgedInbound.status, 401);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await get(id)).status, 'sent');
    const inbound = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data;
    assert.ok(!inbound.some((m: { body: string }) => m.body === 'forged'));
  });

  test('message.received becomes a received message', async () => {
    const res = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155550777', to: SENDER, text: 'Telnyx hello', mediaUrls: ['https://media.telnyx.com/x.jpg'] });
    assert.equal(res.status, 200);
    const m = await eventually(async () => {
      const data = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data as Array<{ body: string; status: string; from: string; channel: string; media_urls: string[]; connector_id: string }>;
      return data.find((x) => x.body === 'Telnyx hello');
    }, 5000, 'the inbound message');
    assert.deepEqual([m.status, m.from, m.channel, m.connector_id], ['received', '+14155550777', 'mms', connectorId]);
    assert.deepEqual(m.media_urls, ['https://media.telnyx.com/x.jpg']);
  });

  test('submit errors: 40310 is failed INVALID_NUMBER; straight from the connector, bad key AUTH_FAILED and 10011 RATE_LIMITED', async () => {
    fake.refuse.set('+14155550130', { code: '40310', status: 400, title: "Invalid 'to' address", detail: 'The destination number is invalid.' });
    const id = await send('+14155550130');
    const f = await settled(id, ['failed', 'undelivered']);
    assert.equal(`${f.status}/${f.error.class}/${f.error.provider_code}`, 'failed/INVALID_NUMBER/40310');

    const connector = (config: Record<string, unknown>) =>
      new TelnyxConnector({ id: 'conn_t', account_id: null, name: 't', type: 'telnyx', config: { api_key: fake.apiKey, public_key: fake.publicKey, base_url: fake.url, ...config } }, { storage: env.p.storage, clock: systemClock, sink: { receipt: async () => {}, inbound: async () => {} }, simulator: { receiptDelayMs: 0, slowSubmitMs: 0, pollMs: 20 } });
    const msg = { reference: 'msg_x', accountId: 'a', mode: 'live', channel: 'sms' as const, to: '+14155550140', from: SENDER, body: 'x', mediaUrls: [], encoding: 'GSM-7' as const, segments: 1, expiresAt: null, attempt: 1 };
    const badAuth = await connector({ api_key: 'KEYwrong' }).submit(msg);
    assert.ok(!badAuth.ok);
    assert.deepEqual([badAuth.errorClass, badAuth.providerCode], ['AUTH_FAILED', '10009']);
    fake.refuse.set('+14155550141', { code: '10011', status: 429, title: 'Too many requests', detail: 'slow down' });
    const throttled = await connector({}).submit({ ...msg, to: '+14155550141' });
    assert.ok(!throttled.ok);
    assert.equal(throttled.errorClass, 'RATE_LIMITED');
    const down = await connector({ base_url: 'http://127.0.0.1:1' }).submit(msg);
    assert.ok(!down.ok);
    assert.equal(down.errorClass, 'UNREACHABLE');
  });
});
