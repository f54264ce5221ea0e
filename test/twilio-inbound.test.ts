// Incoming messages the Twilio way, end to end through the simulator: a number configured with
// an SmsUrl (through the library's IncomingPhoneNumbers resource) gets Twilio's inbound
// parameters, signed for twilio.validateRequest; its TwiML answer is sent back as
// `outbound-reply` messages through the send path; STOP stays ours; a repeated delivery sends
// no reply twice. And `switchboard twilio credentials` as a person runs it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { idOf } from '../src/twilio-compat/sids.ts';
import { freshDatabase, sim, testEnv, type TestEnv } from './helpers.ts';
import { TwilioReceiver, settle, twilioClient } from './twilio-harness.ts';


const twiml = (inner: string) => ({ status: 200, type: 'text/xml', body: `<?xml version="1.0" encoding="UTF-8"?><Response>${inner}</Response>` });

describe('incoming messages and TwiML replies', () => {
  let env: TestEnv;
  let clock: ManualClock;
  let client: ReturnType<typeof twilioClient>;
  let receiver: TwilioReceiver;
  let number: string;
  let numberSid: string;
  const inject = (from: string, body: string) => env.req('POST', '/v1/simulator/inbound', { body: { from, to: number, body } });
  const attemptErrors = async () => ((await env.p.storage.db.selectFrom('webhook_attempts' as never).selectAll().execute()) as Array<{ url: string; error: string | null }>).map((a) => `${a.url} ${a.error ?? ''}`);
  const repliesTo = async (phone: string) => (await client.messages.list({ to: phone })).filter((m) => m.direction === 'outbound-reply');

  before(async () => {
    clock = new ManualClock(Date.parse('2026-03-02T15:00:00Z'));
    env = await testEnv({ clock });
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    const base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
    const creds = (await env.req('GET', '/v1/twilio/credentials')).json();
    client = twilioClient(base, creds.account_sid, creds.auth_token);
    receiver = await new TwilioReceiver().start();
    receiver.authToken = creds.auth_token;
    number = (await env.p.accounts.get(env.accountId)).default_sender!;
  });
  after(async () => {
    await receiver.stop();
    await env.close();
  });

  test('IncomingPhoneNumbers: the account’s senders as PN…, with SmsUrl and SmsMethod settable', async () => {
    const list = await client.incomingPhoneNumbers.list();
    const mine = list.find((n) => n.phoneNumber === number)!;
    assert.ok(mine, 'the default sender is listed');
    assert.match(mine.sid, /^PN[0-9a-f]{32}$/);
    assert.equal(mine.smsUrl, '');
    numberSid = mine.sid;
    const updated = await client.incomingPhoneNumbers(numberSid).update({ smsUrl: receiver.url('/sms'), smsMethod: 'POST', friendlyName: 'Front desk' });
    assert.equal(updated.smsUrl, receiver.url('/sms'));
    assert.equal(updated.smsMethod, 'POST');
    assert.equal(updated.friendlyName, 'Front desk');
    assert.equal((await client.incomingPhoneNumbers(numberSid).fetch()).smsUrl, receiver.url('/sms'));
    await assert.rejects(client.incomingPhoneNumbers(numberSid).update({ smsUrl: 'ftp://nope' }), (e: { code: number }) => e.code === 21502);
    await assert.rejects(client.incomingPhoneNumbers(`PN${'0'.repeat(32)}`).fetch(), (e: { status: number; code: number }) => e.status === 404 && e.code === 20404);
    // The setting is per mode: live credentials see the number without it.
    const live = (await env.req('GET', '/v1/twilio/credentials', { token: env.liveKey })).json();
    const base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
    assert.equal((await twilioClient(base, live.account_sid, live.auth_token).incomingPhoneNumbers(numberSid).fetch()).smsUrl, '');
  });

  test('an inbound message reaches SmsUrl with Twilio’s parameters; its TwiML replies go out as outbound-reply', async () => {
    const handset = sim(1, '617');
    receiver.received = [];
    receiver.answers.set('/sms', twiml(`<Message>Thanks! We got "it" &amp; will call.</Message><Message to="${sim(2, '617')}"><Body>A copy for the manager</Body><Media>https://example.com/card.png</Media></Message><Redirect>/next</Redirect>`));
    const injected = await inject(handset, 'Can I move my appointment?');
    assert.equal(injected.statusCode, 201, injected.body);
    await settle(env, clock);
    const hits = receiver.received.filter((r) => r.path === '/sms');
    assert.equal(hits.length, 1);
    const hit = hits[0];
    assert.ok(hit.valid, 'twilio.validateRequest accepts it');
    assert.equal(hit.method, 'POST');
    const p = hit.params;
    assert.match(p.MessageSid, /^SM[0-9a-f]{32}$/);
    assert.equal(idOf(p.MessageSid, 'msg'), injected.json().id);
    assert.equal(p.SmsMessageSid, p.MessageSid);
    assert.equal(p.SmsSid, p.MessageSid);
    assert.match(p.AccountSid, /^AC/);
    assert.equal(p.From, handset);
    assert.equal(p.To, number);
    assert.equal(p.Body, 'Can I move my appointment?');
    assert.equal(p.NumMedia, '0');
    assert.equal(p.NumSegments, '1');
    assert.equal(p.SmsStatus, 'received');
    assert.equal(p.ApiVersion, '2010-04-01');
    assert.equal(p.FromCountry, 'US');
    assert.equal(p.OptOutType, undefined);
    // The inbound message in the Twilio API.
    const inbound = await client.messages(p.MessageSid).fetch();
    assert.equal(inbound.direction, 'inbound');
    assert.equal(inbound.status, 'received');
    // The replies: one to the sender (the default), one to the number named in `to`, from our number.
    const toSender = await repliesTo(handset);
    assert.equal(toSender.length, 1);
    assert.equal(toSender[0].body, 'Thanks! We got "it" & will call.');
    assert.equal(toSender[0].from, number);
    assert.equal(toSender[0].status, 'delivered');
    const toManager = await repliesTo(sim(2, '617'));
    assert.deepEqual(toManager.map((m) => m.body), ['A copy for the manager']);
    assert.match(toManager[0].sid, /^MM/);
    assert.equal(toManager[0].numMedia, '1');
    // What was ignored is in the delivery's attempt log.
    assert.ok((await attemptErrors()).some((a) => a.startsWith(receiver.url('/sms')) && /Redirect/.test(a)));
  });

  test('a delivery that goes again (its outcome lost in a crash) sends no reply twice', async () => {
    const handset = sim(3, '617');
    receiver.answers.set('/sms', twiml('<Message>Only once</Message>'));
    await inject(handset, 'hello');
    await settle(env, clock);
    assert.equal((await repliesTo(handset)).length, 1);
    // As if the worker died after acting on the answer but before recording the outcome.
    const db = env.p.storage.db as never as import('kysely').Kysely<{ webhook_deliveries: { id: string; target: string; status: string; next_attempt_at: number | null } }>;
    const d = await db.selectFrom('webhook_deliveries').select('id').where('target', 'like', 'twin:%').orderBy('id', 'desc').executeTakeFirstOrThrow();
    await db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: clock.now() }).where('id', '=', d.id).execute();
    const before = receiver.received.length;
    await settle(env, clock, 3);
    assert.equal(receiver.received.length, before + 1, 'the webhook was called again');
    assert.equal((await repliesTo(handset)).length, 1, 'and the reply was not sent again');
  });

  test('STOP stays ours: the opt-out and its confirmation first, OptOutType=STOP, and a TwiML reply to it is refused (21610)', async () => {
    const handset = sim(4, '617');
    receiver.received = [];
    receiver.answers.set('/sms', twiml('<Message>Sorry to see you go, here is a coupon</Message>'));
    await inject(handset, 'stop');
    await settle(env, clock);
    const hit = receiver.received.find((r) => r.path === '/sms' && r.params.From === handset)!;
    assert.equal(hit.params.OptOutType, 'STOP');
    assert.ok(hit.valid);
    const outbound = (await env.req('GET', `/v1/messages?direction=outbound&to=${encodeURIComponent(handset)}`)).json().data as Array<{ body: string; metadata: Record<string, string> }>;
    assert.equal(outbound.length, 1, 'only our opt-out confirmation');
    assert.equal(outbound[0].metadata.keyword_reply, 'opt_out_confirmation');
    assert.ok((await attemptErrors()).some((a) => /21610/.test(a)), 'the refused reply is noted in the attempt log');
  });

  test('SmsMethod=GET: the parameters in the query string, signed over the full URL', async () => {
    await client.incomingPhoneNumbers(numberSid).update({ smsUrl: receiver.url('/sms-get?tenant=7'), smsMethod: 'GET' });
    receiver.received = [];
    receiver.answers.set('/sms-get', twiml(''));
    const handset = sim(5, '617');
    await inject(handset, 'via GET');
    await settle(env, clock);
    const hit = receiver.received.find((r) => r.path === '/sms-get')!;
    assert.equal(hit.method, 'GET');
    assert.ok(hit.valid);
    assert.equal(hit.params.Body, 'via GET');
    assert.equal(hit.params.tenant, '7');
    assert.equal((await repliesTo(handset)).length, 0, 'an empty <Response> sends nothing');
    await client.incomingPhoneNumbers(numberSid).update({ smsUrl: receiver.url('/sms'), smsMethod: 'POST' });
  });

  test('a broken TwiML answer sends nothing and is noted (12100); a receiver that is down gets the message once it is back', async () => {
    const handset = sim(6, '617');
    receiver.answers.set('/sms', twiml('<Message>never closed'));
    await inject(handset, 'one');
    await settle(env, clock);
    assert.equal((await repliesTo(handset)).length, 0);
    assert.ok((await attemptErrors()).some((a) => /12100/.test(a)));

    receiver.answers.set('/sms', twiml('<Message>Back again</Message>'));
    receiver.failNext = 2;
    receiver.received = [];
    await inject(handset, 'two');
    await settle(env, clock, 60);
    assert.ok(receiver.received.filter((r) => r.params.Body === 'two').length >= 3, 'retried on the schedule');
    assert.deepEqual((await repliesTo(handset)).map((m) => m.body), ['Back again']);
  });

  test('TwiML statusCallback on <Message>: the reply’s status callbacks go there', async () => {
    const handset = sim(7, '617');
    receiver.received = [];
    receiver.answers.set('/sms', twiml(`<Message statusCallback="${receiver.url('/reply-status')}">Tracked reply</Message>`));
    await inject(handset, 'track it');
    await settle(env, clock);
    const statuses = receiver.received.filter((r) => r.path === '/reply-status');
    assert.deepEqual(statuses.map((r) => r.params.MessageStatus), ['sent', 'delivered']);
    assert.ok(statuses.every((r) => r.valid));
  });
});

describe('switchboard twilio credentials', () => {
  test('prints the same credentials every time; --rotate makes a new token', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-twcli-'));
    const database = await freshDatabase(dir);
    const env = { ...process.env, DATABASE_URL: database.url, SWITCHBOARD_ENCRYPTION_KEY: '5e'.repeat(32), LOG_LEVEL: 'warn' };
    const bin = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { account_sid: string; auth_token: string; mode: string };
    };
    try {
      const first = cli('twilio', 'credentials', '--default', '--mode', 'test', '--json');
      assert.match(first.account_sid, /^AC[0-9a-f]{32}$/);
      assert.match(first.auth_token, /^[0-9a-f]{32}$/);
      assert.deepEqual(cli('twilio', 'credentials', '--default', '--mode', 'test', '--json'), first);
      const rotated = cli('twilio', 'credentials', '--default', '--mode', 'test', '--rotate', '--json');
      assert.equal(rotated.account_sid, first.account_sid);
      assert.notEqual(rotated.auth_token, first.auth_token);
      // The old token no longer authenticates; the new one does.
      const { createPlatform } = await import('../src/platform.ts');
      const { loadConfig } = await import('../src/config.ts');
      const { createLogger } = await import('../src/logger.ts');
      const p = await createPlatform(loadConfig({}, { DATABASE_URL: database.url, SWITCHBOARD_ENCRYPTION_KEY: '5e'.repeat(32), LOG_LEVEL: 'silent' }), { logger: createLogger('silent'), processMetrics: false });
      try {
        const auth = (token: string) => p.twilio.accounts.authenticate(`Basic ${Buffer.from(`${first.account_sid}:${token}`).toString('base64')}`, first.account_sid, '/x');
        await assert.rejects(auth(first.auth_token), (e: { twilioCode: number }) => e.twilioCode === 20003);
        assert.equal((await auth(rotated.auth_token)).mode, 'test');
        const live = await p.twilio.accounts.credentials((await p.accounts.defaultAccountId())!, 'live');
        assert.notEqual(live.account_sid, first.account_sid);
      } finally {
        await p.close();
      }
    } finally {
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

