// Voice broadcast and ringless voicemail on the simulator, end to end: each call's outcome,
// duration and who answered on the message, on its events and in its message.* webhooks; the
// status each outcome maps to; and the consent rules of the send path (suppression, channel
// opt-outs, marketing consent, quiet hours) applied to calls as to texts. The clock is manual.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

describe('voice and rvm on the simulator', () => {
  const clock = new ManualClock(Date.parse('2026-03-02T15:00:00Z')); // 10:00 in New York
  let env: TestEnv;
  const rx = new Receiver();

  before(async () => {
    await rx.start();
    env = await testEnv({ clock });
    const hook = await env.req('POST', '/v1/webhooks', { body: { url: rx.url } });
    assert.equal(hook.statusCode, 201, hook.body);
    rx.secrets = [hook.json().secret];
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  async function settle(rounds = 20) {
    for (let i = 0; i < rounds; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    await env.p.runDue();
  }
  const send = (body: Record<string, unknown>) => env.req('POST', '/v1/messages', { body });
  const get = async (id: string) => (await env.req('GET', `/v1/messages/${id}`)).json();
  const events = async (id: string) => (await env.req('GET', `/v1/messages/${id}/events`)).json().data as Array<{ status: string; data: Record<string, any> }>;

  async function call(to: string, extra: Record<string, unknown> = {}) {
    const res = await send({ to, channel: 'voice', body: 'Hello, this is Acme Dental reminding you of your visit tomorrow at ten.', ...extra });
    assert.equal(res.statusCode, 202, res.body);
    const accepted = res.json();
    assert.deepEqual(accepted.voice, { outcome: null, duration_s: null, answered_by: null }, 'a call not yet made has no outcome');
    await settle();
    return get(accepted.id);
  }

  test('00: answered by a person; delivered with the duration; events and webhooks carry the outcome', async () => {
    const m = await call(sim(0));
    assert.equal(m.status, 'delivered');
    assert.equal(m.error, null);
    // 13 words at 150 a minute is 6 s, plus 2 s of hello.
    assert.deepEqual(m.voice, { outcome: 'answered', duration_s: 8, answered_by: 'human' });
    const timeline = await events(m.id);
    assert.deepEqual(timeline.map((e) => e.status), ['queued', 'sending', 'sent', 'delivered']);
    const delivered = timeline.at(-1)!;
    assert.equal(delivered.data.raw.call_status, 'completed');
    assert.equal(delivered.data.raw.duration, 8);
    assert.deepEqual(delivered.data.voice, { outcome: 'answered', duration_s: 8, answered_by: 'human' });
    const hook = await eventually(async () => rx.received.find((r) => r.type === 'message.delivered' && r.messageId === m.id), 5000, 'message.delivered webhook');
    assert.ok(hook.verified);
    assert.deepEqual(hook.body.data.voice, { outcome: 'answered', duration_s: 8, answered_by: 'human' });
    const queued = rx.received.find((r) => r.type === 'message.queued' && r.messageId === m.id)!;
    assert.deepEqual(queued.body.data.voice, { outcome: null, duration_s: null, answered_by: null });
  });

  test('08: a voice call goes to an answering machine and leaves the message after the beep: delivered, machine', async () => {
    const m = await call(sim(8));
    assert.equal(m.status, 'delivered');
    assert.deepEqual(m.voice, { outcome: 'machine', duration_s: 18, answered_by: 'machine' });
  });

  test('10: nobody answers: undelivered, UNREACHABLE, no_answer, 0 s', async () => {
    const m = await call(sim(10));
    assert.equal(m.status, 'undelivered');
    assert.equal(m.error.class, 'UNREACHABLE');
    assert.deepEqual(m.voice, { outcome: 'no_answer', duration_s: 0, answered_by: null });
    const hook = await eventually(async () => rx.received.find((r) => r.type === 'message.undelivered' && r.messageId === m.id), 5000, 'message.undelivered webhook');
    assert.equal((hook.body.data.voice as { outcome: string }).outcome, 'no_answer');
  });

  test('20: a busy line: undelivered, UNREACHABLE, busy (an SMS to 20 is delivered)', async () => {
    const m = await call(sim(20));
    assert.equal(m.status, 'undelivered');
    assert.equal(m.error.class, 'UNREACHABLE');
    assert.equal(m.voice.outcome, 'busy');
    const sms = await send({ to: sim(20), body: 'a text' });
    await settle(5);
    const text = await get(sms.json().id);
    assert.equal(text.status, 'delivered');
    assert.equal(text.voice, null, 'sms has no voice object');
  });

  test('11 and 13: a filtered call and one that fails every time end with outcome failed and the class', async () => {
    const filtered = await call(sim(11));
    assert.equal(`${filtered.status}/${filtered.error.class}/${filtered.voice.outcome}`, 'undelivered/FILTERED/failed');
    const broken = await call(sim(13));
    assert.equal(`${broken.status}/${broken.error.class}/${broken.voice.outcome}`, 'failed/UNKNOWN_ERROR/failed');
    assert.equal(broken.attempts, 3);
  });

  test('rvm: the voicemail is dropped (delivered, machine); 10 is undelivered; audio by URL', async () => {
    const res = await send({ to: sim(1), channel: 'rvm', text: 'Your prescription is ready for pickup.' });
    assert.equal(res.statusCode, 202, res.body);
    const audio = await send({ to: sim(2), channel: 'rvm', media_urls: ['https://example.com/reminder.mp3'] });
    assert.equal(audio.statusCode, 202, audio.body);
    const none = await send({ to: sim(10), channel: 'rvm', body: 'Call us back.' });
    await settle();
    const dropped = await get(res.json().id);
    assert.equal(dropped.status, 'delivered');
    assert.deepEqual(dropped.voice, { outcome: 'machine', duration_s: 3, answered_by: 'machine' });
    assert.equal((await events(dropped.id)).at(-1)!.data.raw.voicemail_dropped, true);
    const played = await get(audio.json().id);
    assert.deepEqual([played.status, played.voice.duration_s, played.media_urls[0]], ['delivered', 20, 'https://example.com/reminder.mp3']);
    const missed = await get(none.json().id);
    assert.equal(`${missed.status}/${missed.error.class}/${missed.voice.outcome}`, 'undelivered/UNREACHABLE/no_answer');
  });

  test('a voice message needs a text or an audio URL; the list filters by channel', async () => {
    const empty = await send({ to: sim(3), channel: 'voice' });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error.code, 'VALIDATION_ERROR');
    const list = (await env.req('GET', '/v1/messages?channel=rvm')).json().data as Array<{ channel: string }>;
    assert.ok(list.length >= 3 && list.every((m) => m.channel === 'rvm'));
  });

  test('suppression: an opted-out number gets no call (refused at acceptance), and an opt-out after acceptance cancels the call', async () => {
    const to = sim(4, '303');
    await env.req('POST', '/v1/simulator/inbound', { body: { from: to, body: 'STOP' } });
    await settle(3);
    const refused = await send({ to, channel: 'voice', body: 'We miss you.' });
    assert.equal(refused.statusCode, 422);
    assert.equal(refused.json().error.code, 'OPTED_OUT');
    const rvm = await send({ to, channel: 'rvm', body: 'We miss you.' });
    assert.equal(rvm.json().error.code, 'OPTED_OUT');

    // Accepted, then the number opts out before the dispatcher reaches it: opt-out wins.
    const later = sim(5, '303');
    const accepted = await send({ to: later, channel: 'voice', body: 'Your order shipped.', send_at: new Date(clock.now() + 60_000).toISOString() });
    assert.equal(accepted.json().status, 'scheduled');
    assert.equal((await env.req('POST', '/v1/consent', { body: { phone: later, status: 'opted_out', purpose: 'all', channel: 'all', source: 'api' } })).statusCode, 201);
    clock.advance(61_000);
    await settle(3);
    const canceled = await get(accepted.json().id);
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.error.class, 'OPTED_OUT');
    assert.equal(canceled.voice.outcome, null, 'no call was made');
  });

  test('a voice-only opt-out stops calls and voicemails to that channel only', async () => {
    const to = sim(6, '303');
    assert.equal((await env.req('POST', '/v1/consent', { body: { phone: to, status: 'opted_out', purpose: 'transactional', channel: 'voice', source: 'api' } })).statusCode, 201);
    const call = await send({ to, channel: 'voice', body: 'Hello.' });
    assert.equal(call.json().error.code, 'OPTED_OUT');
    assert.equal(call.json().error.details.channel, 'voice');
    assert.equal((await send({ to, body: 'A text still goes.' })).statusCode, 202);
  });

  test('quiet hours: a marketing call at 23:00 recipient time waits until 08:00, then rings', async () => {
    const to = sim(7, '202'); // America/New_York
    // A marketing consent for SMS does not cover calls.
    await env.req('POST', '/v1/consent', { body: { phone: to, status: 'opted_in', purpose: 'marketing', channel: 'sms', source: 'web_form' } });
    const noConsent = await send({ to, channel: 'voice', body: 'Spring sale.', purpose: 'marketing' });
    assert.equal(noConsent.json().error.code, 'CONSENT_REQUIRED');
    await env.req('POST', '/v1/consent', { body: { phone: to, status: 'opted_in', purpose: 'marketing', channel: 'voice', source: 'web_form' } });

    clock.set(Date.parse('2026-03-03T04:00:00Z')); // 23:00 EST
    const res = await send({ to, channel: 'voice', body: 'Spring sale.', purpose: 'marketing' });
    assert.equal(res.statusCode, 202, res.body);
    const m = res.json();
    assert.equal(m.status, 'scheduled');
    assert.equal(m.send_at, '2026-03-03T13:00:00.000Z');
    assert.equal((await events(m.id))[0].data.held_for, 'quiet_hours');
    await settle(5);
    assert.equal((await get(m.id)).status, 'scheduled', 'no call during quiet hours');
    clock.set(Date.parse('2026-03-03T13:00:00Z'));
    await settle(5);
    const done = await get(m.id);
    assert.equal(done.status, 'delivered');
    assert.equal(done.voice.outcome, 'answered');
  });
});
