// The Plivo connector through the whole platform, against a fake Plivo on 127.0.0.1 that follows
// the documented request and callback shapes and signs its callbacks (X-Plivo-Signature-V3).
import { PROVIDER_SENDER, connectProvider, messageReader } from '../../../test/provider-harness.ts';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../clock.ts';
import { eventually, testEnv, type TestEnv } from '../../../test/helpers.ts';
import { PlivoConnector, plivoReceipt, plivoSignatureV3, validatePlivoConfig } from './plivo-connector.ts';
import { PlivoFake } from './plivo-fake.ts';

describe('Plivo mapping (no sockets)', () => {
  test('the V3 signature covers the URL (query sorted), the sorted POST parameters and the nonce', () => {
    const a = plivoSignatureV3('tok', 'https://x.test/hook?b=2&a=1', 'n1', [['To', '1'], ['From', '2']]);
    assert.equal(a, plivoSignatureV3('tok', 'https://x.test/hook?a=1&b=2', 'n1', [['From', '2'], ['To', '1']]));
    assert.notEqual(a, plivoSignatureV3('tok', 'https://x.test/hook?a=1&b=2', 'n2', [['From', '2'], ['To', '1']]));
    assert.notEqual(a, plivoSignatureV3('tok', 'https://x.test/hook?a=1&b=2', 'n1', [['From', '2'], ['To', '9']]));
    // The joining, spelled out: `?` before the sorted POST parameters even with no query.
    const expected = createHmac('sha256', 'tok').update('https://x.test/hook?From2To1.n1').digest('base64');
    assert.equal(plivoSignatureV3('tok', 'https://x.test/hook', 'n1', [['To', '1'], ['From', '2']]), expected);
    assert.equal(plivoSignatureV3('tok', 'https://x.test/hook?b=2&a=1', 'n1'), createHmac('sha256', 'tok').update('https://x.test/hook?a=1&b=2.n1').digest('base64'));
  });

  test('status callbacks: final statuses only; ErrorCode becomes a class', () => {
    assert.equal(plivoReceipt({ MessageUUID: 'u', Status: 'queued' }), null);
    assert.equal(plivoReceipt({ MessageUUID: 'u', Status: 'sent' }), null);
    assert.equal(plivoReceipt({ MessageUUID: 'u', Status: 'delivered' })!.status, 'delivered');
    const classes = ['20', '30', '50', '80', '200', '900', '950', '1000', '7'].map((c) => plivoReceipt({ MessageUUID: 'u', Status: 'undelivered', ErrorCode: c })!.errorClass);
    assert.deepEqual(classes, ['UNREACHABLE', 'FILTERED', 'INVALID_NUMBER', 'UNREACHABLE', 'OPTED_OUT', 'AUTH_FAILED', 'RATE_LIMITED', 'UNKNOWN_ERROR', 'UNKNOWN_ERROR']);
    assert.equal(plivoReceipt({ MessageUUID: 'u', Status: 'rejected', ErrorCode: '100' })!.status, 'failed');
  });

  test('config: auth_id and auth_token required; the token is never echoed', () => {
    assert.deepEqual(validatePlivoConfig({}), ['auth_id is required', 'auth_token is required']);
    const errors = validatePlivoConfig({ auth_id: 'MA1', auth_token: 'secret-tok-9', webhook_base_url: 'ftp://x' });
    assert.deepEqual(errors, ['webhook_base_url must be an http(s) URL']);
    assert.ok(!errors.join(' ').includes('secret-tok-9'));
  });
});

describe('Plivo through the platform', () => {
  const fake = new PlivoFake();
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
    ({ base, connectorId, createdBody: created } = await connectProvider(env, { name: 'Plivo', type: 'plivo', capabilities: ['sms', 'mms'], config: (base) => ({ auth_id: fake.authId, auth_token: fake.authToken, base_url: fake.url, webhook_base_url: base }) }));
    assert.ok(!created.includes(fake.authToken), 'the auth token is not returned');
  });
  after(async () => {
    await env.close();
    await fake.stop();
  });

  test('send: the fake gets the documented fields; the message is sent with Plivo’s uuid; a delivered callback delivers it', async () => {
    const id = await send('+14155550123', { channel: 'mms', media_urls: ['https://example.com/a.jpg'] });
    const sent = await settled(id, ['sent']);
    const at = fake.messages.find((m) => m.uuid === sent.provider_message_id);
    assert.ok(at, 'the fake holds the message under the uuid we recorded');
    assert.deepEqual(at.body, { dst: '14155550123', src: '14155550100', text: 'hello +14155550123', type: 'mms', media_urls: ['https://example.com/a.jpg'], url: `${base}/hooks/${connectorId}/status`, method: 'POST' });
    assert.equal((await fake.status(at.uuid, 'sent')).status, 204);
    assert.equal((await get(id)).status, 'sent');
    assert.equal((await fake.status(at.uuid, 'delivered')).status, 204);
    await settled(id, ['delivered']);
  });

  test('an undelivered callback with ErrorCode 80 ends undelivered, UNREACHABLE', async () => {
    const id = await send('+14155550125');
    const sent = await settled(id, ['sent']);
    await fake.status(sent.provider_message_id, 'undelivered', { errorCode: '80' });
    const m = await settled(id, ['undelivered', 'failed', 'expired']);
    assert.equal(`${m.status}/${m.error.class}/${m.error.provider_code}`, 'undelivered/UNREACHABLE/80');
  });

  test('a callback with a wrong signature is 401 AUTH_FAILED and changes nothing', async () => {
    const id = await send('+14155550127');
    const sent = await settled(id, ['sent']);
    const forged = await fake.status(sent.provider_message_id, 'delivered', { signWith: 'not-the-token' });
    assert.equal(forged.status, 401);
    assert.equal(((await forged.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    assert.equal((await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155559999', to: SENDER, text: 'forged' }, { signWith: 'nope' })).status, 401);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await get(id)).status, 'sent');
    const inbound = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data;
    assert.ok(!inbound.some((m: { body: string }) => m.body === 'forged'));
  });

  test('an inbound MMS becomes a received message', async () => {
    const res = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155550777', to: SENDER, text: 'Plivo hello', mediaUrls: ['https://media.plivo.com/x.jpg'] });
    assert.equal(res.status, 204);
    const m = await eventually(async () => {
      const data = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data as Array<{ body: string; status: string; from: string; to: string; channel: string; media_urls: string[]; connector_id: string }>;
      return data.find((x) => x.body === 'Plivo hello');
    }, 5000, 'the inbound message');
    assert.deepEqual([m.status, m.from, m.to, m.channel, m.connector_id], ['received', '+14155550777', SENDER, 'mms', connectorId]);
    assert.deepEqual(m.media_urls, ['https://media.plivo.com/x.jpg']);
  });

  test('submit errors: an invalid dst is failed INVALID_NUMBER; from the connector, bad credentials AUTH_FAILED and 429 RATE_LIMITED', async () => {
    fake.refuse.set('14155550130', { status: 400, error: 'dst parameter is invalid' });
    const id = await send('+14155550130');
    const f = await settled(id, ['failed', 'undelivered']);
    assert.equal(`${f.status}/${f.error.class}`, 'failed/INVALID_NUMBER');

    const connector = (config: Record<string, unknown>) =>
      new PlivoConnector({ id: 'conn_p', account_id: null, name: 'p', type: 'plivo', config: { auth_id: fake.authId, auth_token: fake.authToken, base_url: fake.url, ...config } }, { storage: env.p.storage, clock: systemClock, sink: { receipt: async () => {}, inbound: async () => {} }, simulator: { receiptDelayMs: 0, slowSubmitMs: 0, pollMs: 20 } });
    const msg = { reference: 'msg_x', accountId: 'a', mode: 'live', channel: 'sms' as const, to: '+14155550140', from: SENDER, body: 'x', mediaUrls: [], encoding: 'GSM-7' as const, segments: 1, expiresAt: null, attempt: 1 };
    const badAuth = await connector({ auth_token: 'wrong' }).submit(msg);
    assert.ok(!badAuth.ok);
    assert.deepEqual([badAuth.errorClass, badAuth.providerCode], ['AUTH_FAILED', 'HTTP_401']);
    fake.refuse.set('14155550141', { status: 429, error: 'too many requests' });
    const throttled = await connector({}).submit({ ...msg, to: '+14155550141' });
    assert.ok(!throttled.ok);
    assert.equal(throttled.errorClass, 'RATE_LIMITED');
    const down = await connector({ base_url: 'http://127.0.0.1:1' }).submit(msg);
    assert.ok(!down.ok);
    assert.equal(down.errorClass, 'UNREACHABLE');
  });
});
