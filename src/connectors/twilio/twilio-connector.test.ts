// The Twilio connector through the whole platform, against a fake Twilio on 127.0.0.1 that
// follows the documented request and callback shapes: the platform listens on a real port, the
// fake calls its /hooks routes back with X-Twilio-Signature.
import { PROVIDER_SENDER, connectProvider, messageReader } from '../../../test/provider-harness.ts';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { systemClock } from '../../clock.ts';
import { eventually, testEnv, type TestEnv } from '../../../test/helpers.ts';
import { TWILIO_CODES, TwilioConnector, twilioReceipt, twilioSignature, validateTwilioConfig } from './twilio-connector.ts';
import { TwilioFake } from './twilio-fake.ts';

describe('Twilio mapping (no sockets)', () => {
  test('the signature is the documented HMAC-SHA1 over the URL and the sorted parameters', () => {
    // The example from Twilio's security documentation.
    const url = 'https://mycompany.com/myapp.php?foo=1&bar=2';
    const params = { CallSid: 'CA1234567890ABCDE', Caller: '+12349013030', Digits: '1234', From: '+12349013030', To: '+18005551212' };
    assert.equal(twilioSignature('12345', url, params), '0/KCTR6DLpKmkAf8muzZqo1nDgQ=');
  });

  test('status callbacks: final statuses only; delivery error codes become classes', () => {
    assert.equal(twilioReceipt({ MessageSid: 'SM1', MessageStatus: 'sent' }), null);
    assert.equal(twilioReceipt({ MessageSid: 'SM1', MessageStatus: 'delivered' })!.status, 'delivered');
    const codes = ['30003', '30005', '30006', '30007', '30008', '21610', '99999'].map((c) => twilioReceipt({ MessageSid: 'SM1', MessageStatus: 'undelivered', ErrorCode: c })!.errorClass);
    assert.deepEqual(codes, ['UNREACHABLE', 'INVALID_NUMBER', 'INVALID_NUMBER', 'FILTERED', 'UNKNOWN_ERROR', 'OPTED_OUT', 'UNKNOWN_ERROR']);
    assert.equal(twilioReceipt({ MessageSid: 'SM1', MessageStatus: 'failed', ErrorCode: '30002' })!.status, 'failed');
    for (const v of Object.values(TWILIO_CODES)) assert.ok(v.meaning);
  });

  test('config: account_sid and auth_token required; URLs checked; the token is never echoed', () => {
    assert.deepEqual(validateTwilioConfig({}), ['account_sid is required', 'auth_token is required']);
    const errors = validateTwilioConfig({ account_sid: 'AC1', auth_token: 'tok-secret-123', base_url: 'ftp://x', webhook_base_url: 'not a url' });
    assert.deepEqual(errors, ['base_url must be an http(s) URL', 'webhook_base_url must be an http(s) URL']);
    assert.ok(!errors.join(' ').includes('tok-secret-123'));
  });
});

describe('Twilio through the platform', () => {
  const fake = new TwilioFake();
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
    ({ base, connectorId, createdBody: created } = await connectProvider(env, { name: 'Twilio', type: 'twilio', capabilities: ['sms', 'mms'], config: (base) => ({ account_sid: fake.accountSid, auth_token: fake.authToken, base_url: fake.url, webhook_base_url: base }) }));
    assert.ok(!created.includes(fake.authToken), 'the auth token is not returned');
  });
  after(async () => {
    await env.close();
    await fake.stop();
  });

  test('send: the fake gets the documented fields; the message is sent with Twilio’s sid; a delivered callback delivers it', async () => {
    const id = await send('+14155550123');
    const sent = await settled(id, ['sent']);
    const at = fake.messages.find((m) => m.sid === sent.provider_message_id);
    assert.ok(at, 'the fake holds the message under the sid we recorded');
    assert.equal(at.params.get('To'), '+14155550123');
    assert.equal(at.params.get('From'), SENDER);
    assert.equal(at.params.get('Body'), 'hello +14155550123');
    assert.equal(at.params.get('StatusCallback'), `${base}/hooks/${connectorId}/status`);
    assert.equal(sent.connector_id, connectorId);

    assert.equal((await fake.status(at.sid, 'sent')).status, 204, 'a non-final status is acknowledged');
    assert.equal((await get(id)).status, 'sent');
    assert.equal((await fake.status(at.sid, 'delivered')).status, 204);
    await settled(id, ['delivered']);
  });

  test('MMS: every media URL goes as a MediaUrl parameter', async () => {
    const id = await send('+14155550124', { channel: 'mms', media_urls: ['https://example.com/a.jpg', 'https://example.com/b.png'] });
    const sent = await settled(id, ['sent']);
    const at = fake.messages.find((m) => m.sid === sent.provider_message_id)!;
    assert.deepEqual(at.params.getAll('MediaUrl'), ['https://example.com/a.jpg', 'https://example.com/b.png']);
  });

  test('an undelivered callback with ErrorCode 30003 ends undelivered, UNREACHABLE; 30007 FILTERED', async () => {
    const a = await send('+14155550125');
    const b = await send('+14155550126');
    const sa = await settled(a, ['sent']);
    const sb = await settled(b, ['sent']);
    await fake.status(sa.provider_message_id, 'undelivered', { errorCode: '30003' });
    await fake.status(sb.provider_message_id, 'undelivered', { errorCode: '30007' });
    const ua = await settled(a, ['undelivered', 'failed', 'expired']);
    const ub = await settled(b, ['undelivered', 'failed', 'expired']);
    assert.equal(`${ua.status}/${ua.error.class}/${ua.error.provider_code}`, 'undelivered/UNREACHABLE/30003');
    assert.equal(`${ub.status}/${ub.error.class}/${ub.error.provider_code}`, 'undelivered/FILTERED/30007');
  });

  test('a callback with a wrong signature is 401 AUTH_FAILED and changes nothing', async () => {
    const id = await send('+14155550127');
    const sent = await settled(id, ['sent']);
    const res = await fake.status(sent.provider_message_id, 'delivered', { signWith: 'not-the-token' });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'AUTH_FAILED');
    assert.ok(body.error.request_id);
    const unsigned = await fetch(`${base}/hooks/${connectorId}/status`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `MessageSid=${sent.provider_message_id}&MessageStatus=delivered` });
    assert.equal(unsigned.status, 401);
    const forgedInbound = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155559999', to: SENDER, body: 'forged' }, { signWith: 'nope' });
    assert.equal(forgedInbound.status, 401);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal((await get(id)).status, 'sent');
    const inbound = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data;
    assert.ok(!inbound.some((m: { body: string }) => m.body === 'forged'));
    const unknown = await fake.post(`${base}/hooks/conn_nope/status`, { MessageSid: 'SM1', MessageStatus: 'delivered' });
    assert.equal(unknown.status, 404);
    const notHttp = await fake.post(`${base}/hooks/conn_simulator/inbound`, { From: '+14155550001', To: SENDER, Body: 'x' });
    assert.equal(notHttp.status, 404, 'a connector that is not an HTTP provider takes no callbacks');
  });

  test('inbound SMS and MMS become received messages; Twilio gets empty TwiML', async () => {
    const res = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155550777', to: SENDER, body: 'Is my order ready?' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/xml/);
    assert.match(await res.text(), /<Response><\/Response>/);
    const mms = await fake.inbound(`${base}/hooks/${connectorId}/inbound`, { from: '+14155550777', to: SENDER, body: 'photo', mediaUrls: ['https://api.twilio.com/media/ME1'] });
    assert.equal(mms.status, 200);
    const list = await eventually(async () => {
      const data = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data as Array<{ body: string; status: string; from: string; channel: string; media_urls: string[]; connector_id: string }>;
      return data.length >= 2 && data;
    }, 5000, 'two inbound messages');
    const text = list.find((m) => m.body === 'Is my order ready?')!;
    assert.equal(text.status, 'received');
    assert.equal(text.from, '+14155550777');
    assert.equal(text.connector_id, connectorId);
    // Twilio retries a webhook that timed out: the same MessageSid is one message.
    const again = { MessageSid: 'SMretry0000000000000000000000000', AccountSid: fake.accountSid, From: '+14155550778', To: SENDER, Body: 'sent twice', NumMedia: '0' };
    assert.equal((await fake.post(`${base}/hooks/${connectorId}/inbound`, again)).status, 200);
    assert.equal((await fake.post(`${base}/hooks/${connectorId}/inbound`, again)).status, 200);
    const twice = (await env.req('GET', '/v1/messages?direction=inbound', { token: env.liveKey })).json().data.filter((m: { body: string }) => m.body === 'sent twice');
    assert.equal(twice.length, 1);
    const photo = list.find((m) => m.body === 'photo')!;
    assert.equal(photo.channel, 'mms');
    assert.deepEqual(photo.media_urls, ['https://api.twilio.com/media/ME1']);
  });

  test('submit errors: 21211 is failed INVALID_NUMBER; 21610 OPTED_OUT; bad credentials AUTH_FAILED', async () => {
    fake.refuse.set('+14155550130', { code: 21211, status: 400, message: "The 'To' number +14155550130 is not a valid phone number." });
    fake.refuse.set('+14155550131', { code: 21610, status: 400, message: 'Attempt to send to unsubscribed recipient' });
    const a = await send('+14155550130');
    const b = await send('+14155550131');
    const fa = await settled(a, ['failed', 'undelivered']);
    const fb = await settled(b, ['failed', 'undelivered']);
    assert.equal(`${fa.status}/${fa.error.class}/${fa.error.provider_code}`, 'failed/INVALID_NUMBER/21211');
    assert.equal(`${fb.error.class}/${fb.error.provider_code}`, 'OPTED_OUT/21610');
  });

  test('submit errors straight from the connector: bad credentials, throttling, an unreachable provider', async () => {
    const connector = (config: Record<string, unknown>) =>
      new TwilioConnector({ id: 'conn_t', account_id: null, name: 't', type: 'twilio', config: { account_sid: fake.accountSid, auth_token: fake.authToken, base_url: fake.url, ...config } }, { storage: env.p.storage, clock: systemClock, sink: { receipt: async () => {}, inbound: async () => {} }, simulator: { receiptDelayMs: 0, slowSubmitMs: 0, pollMs: 20 } });
    const msg = { reference: 'msg_x', accountId: 'a', mode: 'live', channel: 'sms' as const, to: '+14155550140', from: SENDER, body: 'x', mediaUrls: [], encoding: 'GSM-7' as const, segments: 1, expiresAt: null, attempt: 1 };
    const badAuth = await connector({ auth_token: 'wrong-token' }).submit(msg);
    assert.ok(!badAuth.ok);
    assert.deepEqual([badAuth.errorClass, badAuth.providerCode], ['AUTH_FAILED', '20003']);
    fake.refuse.set('+14155550141', { code: 20429, status: 429, message: 'Too Many Requests' });
    const throttled = await connector({}).submit({ ...msg, to: '+14155550141' });
    assert.ok(!throttled.ok);
    assert.deepEqual([throttled.errorClass, throttled.retryAfterMs], ['RATE_LIMITED', 2000]);
    const down = await connector({ base_url: 'http://127.0.0.1:1' }).submit(msg);
    assert.ok(!down.ok);
    assert.equal(down.errorClass, 'UNREACHABLE');
    const ok = await connector({}).submit(msg);
    assert.ok(ok.ok);
    assert.equal(fake.messages.at(-1)!.params.get('StatusCallback'), null, 'no public URL known: no StatusCallback');
  });
});
