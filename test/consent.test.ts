// Consent rules on the send path: marketing consent, quiet hours in the recipient's local time,
// country rules, and how the ledger derives the current state. Real SQLite, manual clock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { nextAllowed, zoneForNumber } from '../src/consent/time-zones.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('marketing consent, quiet hours and country rules', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z')); // 10:00 in New York
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  const send = (body: Record<string, unknown>) => env.req('POST', '/v1/messages', { body: { body: 'Sale today', ...body } });
  const consent = (phone: string, body: Record<string, unknown>) => env.req('POST', '/v1/consent', { body: { phone, ...body } });
  async function settle(rounds = 10) {
    for (let i = 0; i < rounds; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
  }

  test('a marketing message without an opted_in marketing record is refused, with nothing stored', async () => {
    const to = sim(1, '212');
    const res = await send({ to, purpose: 'marketing' });
    assert.equal(res.statusCode, 422);
    assert.equal(res.json().error.code, 'CONSENT_REQUIRED');
    const list = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}`)).json().data;
    assert.equal(list.length, 0);
    // A transactional message needs only the absence of an opt-out.
    assert.equal((await send({ to })).statusCode, 202);
  });

  test('with an opted_in marketing record it goes; a marketing opt-out refuses it again', async () => {
    const to = sim(2, '212');
    assert.equal((await consent(to, { status: 'opted_in', purpose: 'marketing', source: 'web_form', evidence: { disclosure: 'Text me deals', form_url: 'https://example.com/join', ip: '203.0.113.9' } })).statusCode, 201);
    const ok = await send({ to, purpose: 'marketing' });
    assert.equal(ok.statusCode, 202, ok.body);
    assert.equal(ok.json().status, 'queued');
    await settle();
    assert.equal((await env.req('GET', `/v1/messages/${ok.json().id}`)).json().status, 'delivered');
    await consent(to, { status: 'opted_out', purpose: 'marketing' });
    const refused = await send({ to, purpose: 'marketing' });
    assert.equal(refused.json().error.code, 'OPTED_OUT');
    assert.equal((await send({ to })).statusCode, 202, 'transactional still goes after a marketing-only opt-out');
  });

  test('STOP then START restores what was agreed before, and a blanket opt-in never grants marketing', async () => {
    const to = sim(3, '212');
    await consent(to, { status: 'opted_in', purpose: 'marketing' });
    await env.req('POST', '/v1/simulator/inbound', { body: { from: to, body: 'stop' } });
    assert.equal((await send({ to, purpose: 'marketing' })).json().error.code, 'OPTED_OUT');
    await env.req('POST', '/v1/simulator/inbound', { body: { from: to, body: ' Start ' } });
    assert.equal((await send({ to, purpose: 'marketing' })).statusCode, 202);

    const other = sim(4, '212');
    await consent(other, { status: 'opted_in' });
    assert.equal((await send({ to: other, purpose: 'marketing' })).json().error.code, 'CONSENT_REQUIRED');
  });

  test('at 23:00 recipient time a marketing message is held (scheduled) until 08:00, then sent', async () => {
    const to = sim(5, '202'); // area 202: America/New_York
    await consent(to, { status: 'opted_in', purpose: 'marketing', channel: 'sms' });
    clock.set(Date.parse('2026-01-06T04:00:00Z')); // 23:00 EST
    const res = await send({ to, purpose: 'marketing' });
    assert.equal(res.statusCode, 202, res.body);
    const m = res.json();
    assert.equal(m.status, 'scheduled');
    assert.equal(m.send_at, '2026-01-06T13:00:00.000Z'); // 08:00 EST
    const first = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data[0];
    assert.deepEqual(first.data, { send_at: '2026-01-06T13:00:00.000Z', held_for: 'quiet_hours', time_zone: 'America/New_York' });
    await settle(5);
    assert.equal((await env.req('GET', `/v1/messages/${m.id}`)).json().status, 'scheduled', 'nothing goes during quiet hours');
    clock.set(Date.parse('2026-01-06T13:00:00Z'));
    await settle(5);
    const done = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    assert.equal(done.status, 'delivered');
    // A transactional message at 23:00 is not held.
    clock.set(Date.parse('2026-01-07T04:00:00Z'));
    assert.equal((await send({ to })).json().status, 'queued');
    clock.set(Date.parse('2026-01-05T15:00:00Z'));
  });

  test('a marketing message still waiting when quiet hours begin (a backlog) is held at claim, not sent', async () => {
    const to = sim(9, '202');
    await consent(to, { status: 'opted_in', purpose: 'marketing' });
    clock.set(Date.parse('2026-01-07T01:59:00Z')); // 20:59 EST: inside the window
    const m = (await send({ to, purpose: 'marketing' })).json();
    assert.equal(m.status, 'queued');
    clock.set(Date.parse('2026-01-07T02:30:00Z')); // 21:30 EST: the worker only gets to it now
    await settle(3);
    const held = await env.p.storage.db.selectFrom('messages').select(['status', 'next_attempt_at', 'expires_at']).where('id', '=', m.id).executeTakeFirstOrThrow();
    assert.equal(held.status, 'queued');
    assert.equal(held.next_attempt_at, Date.parse('2026-01-07T13:00:00Z'));
    assert.ok(held.expires_at! > Date.parse('2026-01-07T13:00:00Z'), 'the hold does not eat the validity');
    clock.set(Date.parse('2026-01-07T13:00:00Z'));
    await settle(5);
    assert.equal((await env.req('GET', `/v1/messages/${m.id}`)).json().status, 'delivered');
    clock.set(Date.parse('2026-01-05T15:00:00Z'));
  });

  test("the contact's own time zone wins over the number's", async () => {
    const to = sim(6, '202');
    await consent(to, { status: 'opted_in', purpose: 'marketing' });
    const c = await env.req('POST', '/v1/contacts', { body: { phone: to, time_zone: 'Asia/Tokyo' } });
    assert.equal(c.statusCode, 201, c.body);
    clock.set(Date.parse('2026-01-05T15:00:00Z')); // 10:00 in New York, 00:00 in Tokyo
    const m = (await send({ to, purpose: 'marketing' })).json();
    assert.equal(m.status, 'scheduled');
    assert.equal(m.send_at, '2026-01-05T23:00:00.000Z'); // 08:00 in Tokyo
  });

  test('quiet hours and country rules are per account settings', async () => {
    const bad = await env.req('PATCH', '/v1/settings/messaging', { body: { quiet_hours: { allowed_from: '8am' } } });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'quiet_hours.allowed_from');
    const res = await env.req('PATCH', '/v1/settings/messaging', { body: { countries: { block: ['gb'] }, quiet_hours: { allowed_from: '09:30', allowed_until: '20:00' } } });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json().countries.block, ['GB']);
    assert.equal(res.json().keywords.help_reply.length > 0, true, 'untouched parts keep their defaults');

    const blocked = await send({ to: '+44 7400 123456' });
    assert.equal(blocked.statusCode, 422);
    assert.equal(blocked.json().error.code, 'FILTERED');
    assert.equal(blocked.json().error.details.country, 'GB');

    const to = sim(7, '415'); // Los Angeles: 07:00 at 15:00Z
    await consent(to, { status: 'opted_in', purpose: 'marketing' });
    const m = (await send({ to, purpose: 'marketing' })).json();
    assert.equal(m.send_at, '2026-01-05T17:30:00.000Z'); // 09:30 PST

    await env.req('PATCH', '/v1/settings/messaging', { body: { countries: { block: [], allow: ['US', 'CA'] }, quiet_hours: { enabled: false } } });
    assert.equal((await send({ to: '+33 6 12 34 56 78' })).json().error.code, 'FILTERED');
    assert.equal((await send({ to, purpose: 'marketing' })).json().status, 'queued');
    const noScope = await env.req('GET', '/v1/settings/messaging', { token: await env.key({ scopes: ['messages:send'] }) });
    assert.equal(noScope.statusCode, 403);
    await env.req('PATCH', '/v1/settings/messaging', { body: { countries: { allow: [] }, quiet_hours: { enabled: true, allowed_from: '08:00', allowed_until: '21:00' } } });
  });

  test('a marketing message queued before an opt-out is canceled at claim, never submitted', async () => {
    const to = sim(8, '202');
    await consent(to, { status: 'opted_in', purpose: 'marketing' });
    clock.set(Date.parse('2026-01-06T03:00:00Z')); // 22:00 EST: held
    const m = (await send({ to, purpose: 'marketing' })).json();
    assert.equal(m.status, 'scheduled');
    await consent(to, { status: 'opted_out', purpose: 'marketing' });
    clock.set(Date.parse('2026-01-06T13:00:00Z'));
    await settle(3);
    const after = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    assert.equal(after.status, 'canceled');
    assert.equal(after.provider_message_id, null);
    clock.set(Date.parse('2026-01-05T15:00:00Z'));
  });
});

describe('channel- and purpose-specific opt-outs', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  test('an opt-out of one channel refuses that channel only, at the API and at claim', async () => {
    const to = sim(1, '617');
    const queued = (await env.req('POST', '/v1/messages', { body: { to, body: 'call', channel: 'voice' } })).json();
    assert.equal(queued.status, 'queued');
    await env.req('POST', '/v1/consent', { body: { phone: to, status: 'opted_out', channel: 'voice' } });
    const voice = await env.req('POST', '/v1/messages', { body: { to, body: 'call', channel: 'voice' } });
    assert.equal(voice.statusCode, 422);
    assert.equal(voice.json().error.code, 'OPTED_OUT');
    assert.equal((await env.req('POST', '/v1/messages', { body: { to, body: 'text' } })).statusCode, 202);
    await env.p.runDue();
    const after = (await env.req('GET', `/v1/messages/${queued.id}`)).json();
    assert.equal(after.status, 'canceled');
    assert.equal(after.error.code, 'CONSENT_WITHDRAWN');
  });

  test('an opt-out of transactional messages refuses them', async () => {
    const to = sim(2, '617');
    await env.req('POST', '/v1/consent', { body: { phone: to, status: 'opted_out', purpose: 'transactional' } });
    assert.equal((await env.req('POST', '/v1/messages', { body: { to, body: 'receipt' } })).json().error.code, 'OPTED_OUT');
  });
});

describe('time zones from numbers', () => {
  test('NANP area codes, other countries, and the window arithmetic across DST', () => {
    assert.equal(zoneForNumber('+12125550100'), 'America/New_York');
    assert.equal(zoneForNumber('+13125550100'), 'America/Chicago');
    assert.equal(zoneForNumber('+17205550100'), 'America/Denver');
    assert.equal(zoneForNumber('+16025550100'), 'America/Phoenix');
    assert.equal(zoneForNumber('+14155550100'), 'America/Los_Angeles');
    assert.equal(zoneForNumber('+16045550100'), 'America/Vancouver');
    assert.equal(zoneForNumber('+18085550100'), 'Pacific/Honolulu');
    assert.equal(zoneForNumber('+33612345678'), 'Europe/Paris');
    assert.equal(zoneForNumber('+5511987654321'), 'America/Sao_Paulo');
    // 23:00 EST on the eve of the spring change: the window opens at 08:00 EDT (12:00Z).
    assert.equal(new Date(nextAllowed(Date.parse('2026-03-08T04:00:00Z'), 'America/New_York', '08:00', '21:00')).toISOString(), '2026-03-08T12:00:00.000Z');
    // Inside the window: unchanged.
    assert.equal(nextAllowed(Date.parse('2026-01-05T15:00:00Z'), 'America/New_York', '08:00', '21:00'), Date.parse('2026-01-05T15:00:00Z'));
    // A window across midnight.
    assert.equal(new Date(nextAllowed(Date.parse('2026-01-05T12:00:00Z'), 'UTC', '22:00', '06:00')).toISOString(), '2026-01-05T22:00:00.000Z');
  });
});
