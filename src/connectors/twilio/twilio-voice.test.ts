// Twilio Programmable Voice through the whole platform, against the fake Twilio on 127.0.0.1:
// a voice message becomes a call with TwiML and answering-machine detection, and the signed
// call status callbacks set the message's outcome, duration and status.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PROVIDER_SENDER, connectProvider, messageReader } from '../../../test/provider-harness.ts';
import { testEnv, type TestEnv } from '../../../test/helpers.ts';
import { callTwiml, twilioCallReceipt } from './twilio-voice.ts';
import { validateTwilioConfig } from './twilio-connector.ts';
import { TwilioFake } from './twilio-fake.ts';

describe('Twilio voice mapping (no sockets)', () => {
  test('TwiML says the text (escaped) or plays the audio', () => {
    assert.equal(callTwiml({ body: 'Tom & Jerry <3', mediaUrls: [] }), '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Tom &amp; Jerry &lt;3</Say></Response>');
    assert.equal(callTwiml({ body: 'hi', mediaUrls: [] }, { say_voice: 'Polly.Joanna', say_language: 'en-US' }), '<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="Polly.Joanna" language="en-US">hi</Say></Response>');
    assert.equal(callTwiml({ body: 'ignored', mediaUrls: ['https://sb.example.com/media/m/t?a=1&b=2'] }), '<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://sb.example.com/media/m/t?a=1&amp;b=2</Play></Response>');
  });

  test('CallStatus and AnsweredBy map onto outcome, status and class', () => {
    const r = (p: Record<string, string>) => twilioCallReceipt({ CallSid: 'CA1', ...p });
    for (const s of ['queued', 'initiated', 'ringing', 'in-progress']) assert.equal(r({ CallStatus: s }), null, s);
    type Row = [Record<string, string>, string, string, string | null, number, string | undefined];
    const rows: Row[] = [
      [{ CallStatus: 'completed', AnsweredBy: 'human', CallDuration: '23' }, 'delivered', 'answered', 'human', 23, undefined],
      [{ CallStatus: 'completed', AnsweredBy: 'unknown', CallDuration: '9' }, 'delivered', 'answered', 'unknown', 9, undefined],
      [{ CallStatus: 'completed', CallDuration: '9' }, 'delivered', 'answered', null, 9, undefined],
      [{ CallStatus: 'completed', AnsweredBy: 'machine_start', CallDuration: '30' }, 'delivered', 'machine', 'machine', 30, undefined],
      ...['machine_end_beep', 'machine_end_silence', 'machine_end_other'].map((a): Row => [{ CallStatus: 'completed', AnsweredBy: a, CallDuration: '41' }, 'delivered', 'machine', 'machine', 41, undefined]),
      [{ CallStatus: 'completed', AnsweredBy: 'fax', CallDuration: '4' }, 'failed', 'failed', 'fax', 4, 'INVALID_NUMBER'],
      [{ CallStatus: 'busy', CallDuration: '0' }, 'undelivered', 'busy', null, 0, 'UNREACHABLE'],
      [{ CallStatus: 'no-answer', CallDuration: '0' }, 'undelivered', 'no_answer', null, 0, 'UNREACHABLE'],
      [{ CallStatus: 'failed', SipResponseCode: '404' }, 'failed', 'failed', null, 0, 'INVALID_NUMBER'],
      [{ CallStatus: 'failed', SipResponseCode: '603' }, 'failed', 'failed', null, 0, 'FILTERED'],
      [{ CallStatus: 'failed', SipResponseCode: '480' }, 'failed', 'failed', null, 0, 'UNREACHABLE'],
      [{ CallStatus: 'failed', ErrorCode: '21215' }, 'failed', 'failed', null, 0, 'FILTERED'],
      [{ CallStatus: 'canceled' }, 'failed', 'failed', null, 0, 'UNKNOWN_ERROR'],
    ];
    for (const [p, status, outcome, who, duration, cls] of rows) {
      const got = r(p)!;
      assert.deepEqual([got.status, got.voice?.outcome, got.voice?.answeredBy, got.voice?.durationS, got.errorClass], [status, outcome, who, duration, cls], JSON.stringify(p));
    }
  });

  test('voice config is checked', () => {
    assert.deepEqual(validateTwilioConfig({ account_sid: 'AC1', auth_token: 't', machine_detection: 'Maybe', ring_timeout_s: 2, say_voice: 'bad voice!' }), [
      'machine_detection must be DetectMessageEnd, Enable or off',
      'say_voice must be a voice or language name',
      'ring_timeout_s must be a whole number from 5 to 600',
    ]);
  });
});

describe('Twilio voice through the platform', () => {
  const fake = new TwilioFake();
  let env: TestEnv;
  let base = '';
  let connectorId = '';
  const { get, settled } = messageReader(() => env);
  const call = async (to: string, extra: Record<string, unknown> = {}) => {
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to, from: PROVIDER_SENDER, channel: 'voice', body: 'Your table for four is ready.', ...extra } });
    assert.equal(res.statusCode, 202, res.body);
    const sent = await settled(res.json().id as string, ['sent', 'failed']);
    return { id: sent.id as string, sid: sent.provider_message_id as string, sent };
  };

  before(async () => {
    await fake.start();
    env = await testEnv({ workers: true });
    ({ base, connectorId } = await connectProvider(env, {
      name: 'Twilio',
      type: 'twilio',
      capabilities: ['sms', 'mms', 'voice'],
      config: (b) => ({ account_sid: fake.accountSid, auth_token: fake.authToken, base_url: fake.url, webhook_base_url: b }),
    }));
  });
  after(async () => {
    await env.close();
    await fake.stop();
  });

  test('a voice message is a call: To, From, Twiml <Say>, MachineDetection DetectMessageEnd, StatusCallback and its events', async () => {
    const { id, sid, sent } = await call('+14155550150');
    assert.equal(sent.status, 'sent');
    assert.match(sid, /^CA[0-9a-f]{32}$/);
    assert.equal(fake.messages.length, 0, 'no SMS was sent');
    const c = fake.calls.find((x) => x.sid === sid)!;
    assert.equal(c.params.get('To'), '+14155550150');
    assert.equal(c.params.get('From'), PROVIDER_SENDER);
    assert.equal(c.params.get('Twiml'), '<?xml version="1.0" encoding="UTF-8"?><Response><Say>Your table for four is ready.</Say></Response>');
    assert.equal(c.params.get('MachineDetection'), 'DetectMessageEnd');
    assert.equal(c.params.get('StatusCallback'), `${base}/hooks/${connectorId}/status`);
    assert.equal(c.params.get('StatusCallbackMethod'), 'POST');
    assert.deepEqual(c.params.getAll('StatusCallbackEvent'), ['initiated', 'ringing', 'answered', 'completed']);
    assert.equal(c.authorization, `Basic ${Buffer.from(`${fake.accountSid}:${fake.authToken}`).toString('base64')}`);

    assert.equal((await fake.callStatus(sid, 'ringing')).status, 204, 'a call in progress is acknowledged');
    assert.equal((await fake.callStatus(sid, 'in-progress', { answeredBy: 'human' })).status, 204);
    assert.equal((await get(id)).status, 'sent');
    assert.equal((await fake.callStatus(sid, 'completed', { answeredBy: 'human', duration: 23 })).status, 204);
    const done = await settled(id, ['delivered']);
    assert.deepEqual(done.voice, { outcome: 'answered', duration_s: 23, answered_by: 'human' });
    const events = (await env.req('GET', `/v1/messages/${id}/events`, { token: env.liveKey })).json().data;
    const last = events.at(-1);
    assert.equal(last.status, 'delivered');
    assert.equal(last.data.raw.CallStatus, 'completed');
    assert.equal(last.data.raw.AnsweredBy, 'human');
    assert.equal(last.data.raw.CallDuration, '23');
  });

  test('an answering machine: the message is left after the beep; delivered, machine', async () => {
    const { id, sid } = await call('+14155550151');
    await fake.callStatus(sid, 'completed', { answeredBy: 'machine_end_beep', duration: 38 });
    const done = await settled(id, ['delivered']);
    assert.deepEqual(done.voice, { outcome: 'machine', duration_s: 38, answered_by: 'machine' });
  });

  test('busy and no-answer are undelivered UNREACHABLE; a failed call takes its class from the SIP code', async () => {
    const busy = await call('+14155550152');
    const quiet = await call('+14155550153');
    const dead = await call('+14155550154');
    await fake.callStatus(busy.sid, 'busy');
    await fake.callStatus(quiet.sid, 'no-answer');
    await fake.callStatus(dead.sid, 'failed', { sipResponseCode: '404' });
    const b = await settled(busy.id, ['undelivered']);
    const q = await settled(quiet.id, ['undelivered']);
    const d = await settled(dead.id, ['failed']);
    assert.equal(`${b.error.class}/${b.voice.outcome}/${b.voice.duration_s}`, 'UNREACHABLE/busy/0');
    assert.equal(`${q.error.class}/${q.voice.outcome}`, 'UNREACHABLE/no_answer');
    assert.equal(`${d.error.class}/${d.error.provider_code}/${d.voice.outcome}`, 'INVALID_NUMBER/SIP_404/failed');
    const again = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+14155550154', from: PROVIDER_SENDER, channel: 'voice', body: 'x' } });
    assert.equal(again.json().error.code, 'INVALID_NUMBER', 'a number the carrier reported dead is suppressed');
  });

  test('audio by URL is played', async () => {
    const { sid } = await call('+14155550155', { body: undefined, media_urls: ['https://cdn.example.com/greeting.mp3'] });
    assert.equal(fake.calls.find((x) => x.sid === sid)!.params.get('Twiml'), '<?xml version="1.0" encoding="UTF-8"?><Response><Play>https://cdn.example.com/greeting.mp3</Play></Response>');
  });

  test('a call status callback with a wrong signature is 401 AUTH_FAILED and changes nothing', async () => {
    const { id, sid } = await call('+14155550156');
    const forged = await fake.callStatus(sid, 'completed', { answeredBy: 'human', duration: 5, signWith: 'not-the-token' });
    assert.equal(forged.status, 401);
    assert.equal(((await forged.json()) as { error: { code: string } }).error.code, 'AUTH_FAILED');
    await new Promise((r) => setTimeout(r, 100));
    const m = await get(id);
    assert.equal(m.status, 'sent');
    assert.deepEqual(m.voice, { outcome: null, duration_s: null, answered_by: null });
  });

  test('a call Twilio refuses: 21215 (geo permissions) fails FILTERED with outcome failed, into review', async () => {
    fake.refuse.set('+14155550157', { code: 21215, status: 400, message: 'Account not authorized to call +14155550157. Perhaps you need to enable some international permissions' });
    const { id } = await call('+14155550157');
    const m = await settled(id, ['failed']);
    assert.equal(`${m.error.class}/${m.error.provider_code}/${m.voice.outcome}`, 'FILTERED/21215/failed');
    const review = (await env.req('GET', '/v1/review', { token: env.liveKey })).json().data as Array<{ message_id: string }>;
    assert.ok(review.some((r) => r.message_id === id));
  });
});
