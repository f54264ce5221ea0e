// The Twilio-compatible API as an existing Twilio app sees it: the official `twilio` library,
// pointed at a Switchboard listening on 127.0.0.1, creates, fetches, lists (several pages),
// schedules and cancels, redacts and deletes messages; its errors are RestExceptions with
// Twilio's codes; status callbacks and incoming-message webhooks reach a real receiver that
// checks them with twilio.validateRequest; TwiML answers are sent as replies.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import twilio from 'twilio';
import { ManualClock } from '../src/clock.ts';
import { idOf } from '../src/twilio-compat/sids.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { TwilioReceiver, settle, twilioClient } from './twilio-harness.ts';

type Client = ReturnType<typeof twilioClient>;


/** What a failed call of the library throws. */
async function restError(fn: () => Promise<unknown>): Promise<{ status: number; code: number; message: string; moreInfo: string }> {
  try {
    await fn();
  } catch (err) {
    assert.ok(err instanceof twilio.RestException, `expected a RestException, got ${String(err)}`);
    return err as unknown as { status: number; code: number; message: string; moreInfo: string };
  }
  throw new Error('expected the call to fail');
}

describe('Twilio-compatible API with the official twilio library', () => {
  let env: TestEnv;
  let clock: ManualClock;
  let base: string;
  let creds: { account_sid: string; auth_token: string };
  let client: Client;
  let receiver: TwilioReceiver;
  const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const raw = (method: string, path: string, opts: { form?: Record<string, string | string[]>; headers?: Record<string, string>; auth?: string } = {}) => {
    const body = opts.form ? new URLSearchParams(Object.entries(opts.form).flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x]) : [[k, v]]))).toString() : undefined;
    return fetch(`${base}${path}`, {
      method,
      headers: { authorization: opts.auth ?? basic(creds.account_sid, creds.auth_token), ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...opts.headers },
      body,
    });
  };

  before(async () => {
    clock = new ManualClock(Date.parse('2026-03-02T15:00:00Z'));
    env = await testEnv({ clock });
    await env.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
    const res = await env.req('GET', '/v1/twilio/credentials');
    assert.equal(res.statusCode, 200, res.body);
    creds = res.json();
    client = twilioClient(base, creds.account_sid, creds.auth_token);
    receiver = await new TwilioReceiver().start();
    receiver.authToken = creds.auth_token;
  });
  after(async () => {
    await receiver.stop();
    await env.close();
  });

  test('credentials: AC + 32 hex and a 32-hex token, the same on every call; live mode has its own', async () => {
    assert.match(creds.account_sid, /^AC[0-9a-f]{32}$/);
    assert.match(creds.auth_token, /^[0-9a-f]{32}$/);
    const again = (await env.req('POST', '/v1/twilio/credentials', { body: {} })).json();
    assert.equal(again.account_sid, creds.account_sid);
    assert.equal(again.auth_token, creds.auth_token);
    const live = (await env.req('GET', '/v1/twilio/credentials', { token: env.liveKey })).json();
    assert.equal(live.mode, 'live');
    assert.notEqual(live.account_sid, creds.account_sid);
    const sender = await env.key({ scopes: ['messages:send'] });
    assert.equal((await env.req('GET', '/v1/twilio/credentials', { token: sender })).statusCode, 403);
    // Stored hashed and sealed, never in the clear.
    const row = await env.p.storage.db.withoutPlugins().selectFrom('twilio_accounts' as never).selectAll().where('account_sid' as never, '=', creds.account_sid as never).executeTakeFirstOrThrow() as Record<string, string>;
    assert.ok(!JSON.stringify(row).includes(creds.auth_token));
    assert.match(row.token_sealed, /^v2:[0-9a-f]{8}:/);
  });

  test('create and fetch: a message in Twilio’s shape, sent through the send path', async () => {
    const m = await client.messages.create({ to: '+1 (202) 555-0101', body: 'Your code is 1234' });
    assert.match(m.sid, /^SM[0-9a-f]{32}$/);
    assert.equal(m.sid.length, 34);
    assert.equal(m.accountSid, creds.account_sid);
    assert.equal(m.to, '+12025550101');
    assert.ok(m.from);
    assert.equal(m.body, 'Your code is 1234');
    assert.equal(m.status, 'queued');
    assert.equal(m.direction, 'outbound-api');
    assert.equal(m.numSegments, '1');
    assert.equal(m.numMedia, '0');
    assert.equal(m.apiVersion, '2010-04-01');
    assert.equal(m.errorCode, null);
    assert.equal(m.dateCreated.getTime(), clock.now());
    assert.equal(m.uri, `/2010-04-01/Accounts/${creds.account_sid}/Messages/${m.sid}.json`);
    assert.ok(m.subresourceUris.media.endsWith(`/Messages/${m.sid}/Media.json`));
    // The same message in our own API: the SID is its id in hex.
    const ours = await env.req('GET', `/v1/messages/${idOf(m.sid, 'msg')}`);
    assert.equal(ours.statusCode, 200);
    assert.equal(ours.json().body, 'Your code is 1234');
    await settle(env, clock);
    const fetched = await client.messages(m.sid).fetch();
    assert.equal(fetched.status, 'delivered');
    assert.ok(fetched.dateSent instanceof Date);
    // RFC 2822 on the wire.
    const wire = await (await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Messages/${m.sid}.json`)).json();
    assert.match(wire.date_created, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} \+0000$/);
    assert.equal(wire.price, null);
    assert.equal(wire.price_unit, 'USD');
  });

  test('media: MediaUrl repeated makes an MMS (MM…); more than 10 is 21623', async () => {
    const m = await client.messages.create({ to: sim(2), body: 'see', mediaUrl: ['https://example.com/a.png', 'https://example.com/b.png'] });
    assert.match(m.sid, /^MM[0-9a-f]{32}$/);
    assert.equal(m.numMedia, '2');
    const e = await restError(() => client.messages.create({ to: sim(2), body: 'x', mediaUrl: Array.from({ length: 11 }, (_, i) => `https://example.com/${i}.png`) }));
    assert.equal(e.code, 21623);
  });

  test('status callbacks: Twilio’s form, signed for validateRequest, in order, retried, no callback for the initial status', async () => {
    receiver.received = [];
    receiver.failNext = 1; // the first callback meets a receiver that is down
    const ok = await client.messages.create({ to: sim(3), body: 'tracked', statusCallback: receiver.url('/status') });
    const bad = await client.messages.create({ to: sim(10), body: 'handset off', statusCallback: receiver.url('/status') });
    await settle(env, clock, 12);
    const of = (sid: string) => receiver.received.filter((r) => r.params.MessageSid === sid);
    assert.ok(receiver.received.every((r) => r.valid), 'every callback validates with twilio.validateRequest');
    const okStatuses = of(ok.sid).map((r) => r.params.MessageStatus);
    // The refused first attempt is repeated: same idempotency token, then the next status.
    assert.deepEqual([...new Set(okStatuses)], ['sent', 'delivered']);
    assert.equal(okStatuses[0], 'sent');
    const first = of(ok.sid).filter((r) => r.params.MessageStatus === 'sent');
    if (first.length > 1) assert.equal(first[0].headers['i-twilio-idempotency-token'], first[1].headers['i-twilio-idempotency-token']);
    const delivered = of(ok.sid).find((r) => r.params.MessageStatus === 'delivered')!;
    assert.equal(delivered.method, 'POST');
    assert.match(String(delivered.headers['content-type']), /^application\/x-www-form-urlencoded/);
    assert.equal(delivered.params.SmsSid, ok.sid);
    assert.equal(delivered.params.SmsStatus, 'delivered');
    assert.equal(delivered.params.AccountSid, creds.account_sid);
    assert.equal(delivered.params.To, sim(3));
    assert.equal(delivered.params.From, ok.from);
    assert.equal(delivered.params.ApiVersion, '2010-04-01');
    assert.match(delivered.params.RawDlrDoneDate, /^\d{10}$/);
    assert.equal(delivered.params.ErrorCode, undefined);
    assert.match(String(delivered.headers['i-twilio-idempotency-token']), /^whd_/);
    assert.match(String(delivered.headers['user-agent']), /^TwilioProxy\//);
    const undelivered = of(bad.sid).find((r) => r.params.MessageStatus === 'undelivered')!;
    assert.equal(undelivered.params.ErrorCode, '30003');
    assert.deepEqual(of(bad.sid).map((r) => r.params.MessageStatus), ['sent', 'undelivered']);
    const fetched = await client.messages(bad.sid).fetch();
    assert.equal(fetched.errorCode, 30003);
    assert.ok(fetched.errorMessage);
    // A handler that checks signatures refuses a forged one.
    assert.equal(twilio.validateRequest(creds.auth_token, 'forged', receiver.url('/status'), delivered.params), false);
  });

  test('messaging services: a sender pool is MG…; its messages start accepted, then get a queued callback', async () => {
    const senders = (await env.req('GET', '/v1/senders')).json().data as Array<{ address: string }>;
    const pool = (await env.req('POST', '/v1/sender-pools', { token: env.testKey, body: { name: 'twilio-service', addresses: [senders[0].address] } })).json();
    assert.match(pool.messaging_service_sid, /^MG[0-9a-f]{32}$/);
    receiver.received = [];
    const m = await client.messages.create({ to: sim(4), body: 'from the service', messagingServiceSid: pool.messaging_service_sid, statusCallback: receiver.url('/svc') });
    assert.equal(m.status, 'accepted');
    assert.equal(m.messagingServiceSid, pool.messaging_service_sid);
    assert.equal(m.from, senders[0].address);
    await settle(env, clock);
    const statuses = receiver.received.filter((r) => r.path === '/svc').map((r) => r.params.MessageStatus);
    assert.deepEqual(statuses, ['queued', 'sent', 'delivered']);
    assert.ok(receiver.received.filter((r) => r.path === '/svc').every((r) => r.params.MessagingServiceSid === pool.messaging_service_sid && r.valid));
    assert.equal((await client.messages(m.sid).fetch()).messagingServiceSid, pool.messaging_service_sid);
    const e = await restError(() => client.messages.create({ to: sim(4), body: 'x', messagingServiceSid: `MG${'0'.repeat(32)}` }));
    assert.equal(e.code, 21705);
    assert.equal(e.status, 400);
  });

  test('scheduling: SendAt + ScheduleType=fixed, then Status=canceled; 35114 outside 15 min – 35 days', async () => {
    const sendAt = new Date(clock.now() + 3600_000);
    const m = await client.messages.create({ to: sim(5), body: 'later', sendAt, scheduleType: 'fixed', statusCallback: receiver.url('/sched') });
    assert.equal(m.status, 'scheduled');
    await settle(env, clock, 2);
    assert.equal((await client.messages(m.sid).fetch()).status, 'scheduled');
    const canceled = await client.messages(m.sid).update({ status: 'canceled' });
    assert.equal(canceled.status, 'canceled');
    clock.advance(3600_000);
    await settle(env, clock, 3);
    assert.equal((await client.messages(m.sid).fetch()).status, 'canceled');
    assert.deepEqual(receiver.received.filter((r) => r.path === '/sched').map((r) => r.params.MessageStatus), ['canceled']);
    for (const at of [new Date(clock.now() + 5 * 60_000), new Date(clock.now() + 40 * 86400_000)]) {
      const e = await restError(() => client.messages.create({ to: sim(5), body: 'x', sendAt: at, scheduleType: 'fixed' }));
      assert.equal(e.code, 35114);
      assert.equal(e.status, 400);
    }
    // A scheduled message's own time comes: queued is a status change after creation, so it has a callback.
    const later = await client.messages.create({ to: sim(5), body: 'in 20 min', sendAt: new Date(clock.now() + 20 * 60_000), scheduleType: 'fixed', statusCallback: receiver.url('/sched2') });
    clock.advance(21 * 60_000);
    await settle(env, clock);
    assert.equal((await client.messages(later.sid).fetch()).status, 'delivered');
    assert.deepEqual(receiver.received.filter((r) => r.path === '/sched2').map((r) => r.params.MessageStatus), ['queued', 'sent', 'delivered']);
  });

  test('list: filters and Twilio paging over several pages, both ways', async () => {
    const to = sim(6, '415');
    const sids: string[] = [];
    for (let i = 0; i < 7; i++) {
      sids.push((await client.messages.create({ to, body: `page ${i}` })).sid);
      clock.advance(10);
    }
    const all = await client.messages.list({ to, pageSize: 3 });
    assert.deepEqual(all.map((m) => m.sid), [...sids].reverse(), 'newest first, every page followed');
    const p1 = await client.messages.page({ to, pageSize: 3 });
    assert.equal(p1.instances.length, 3);
    const p2 = (await p1.nextPage())!;
    assert.deepEqual(p2.instances.map((m) => m.sid), [sids[3], sids[2], sids[1]]);
    const p3 = (await p2.nextPage())!;
    assert.deepEqual(p3.instances.map((m) => m.sid), [sids[0]]);
    assert.equal(p3.nextPageUrl, undefined);
    const back = (await p2.previousPage())!;
    assert.deepEqual(back.instances.map((m) => m.sid), p1.instances.map((m) => m.sid));
    // The paging fields as Twilio writes them.
    const wire = await (await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Messages.json?To=${encodeURIComponent(to)}&PageSize=3`)).json();
    assert.equal(wire.page, 0);
    assert.equal(wire.page_size, 3);
    assert.equal(wire.start, 0);
    assert.equal(wire.end, 2);
    assert.equal(wire.previous_page_uri, null);
    assert.match(wire.first_page_uri, /^\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Messages\.json\?To=%2B14155550106&PageSize=3&Page=0$/);
    assert.match(wire.next_page_uri, /&Page=1&PageToken=PASM[0-9a-f]{32}$/);
    assert.equal(wire.uri, wire.first_page_uri);
    const second = await (await raw('GET', wire.next_page_uri)).json();
    assert.equal(second.page, 1);
    assert.equal(second.start, 3);
    assert.equal(second.end, 5);
    // Page alone (absolute paging) lands on the same messages.
    const absolute = await (await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Messages.json?To=${encodeURIComponent(to)}&PageSize=3&Page=1`)).json();
    assert.deepEqual(absolute.messages.map((m: { sid: string }) => m.sid), second.messages.map((m: { sid: string }) => m.sid));
    // DateSent filters (on the day, before, after).
    const today = new Date(clock.now()).toISOString().slice(0, 10);
    assert.equal((await client.messages.list({ to, dateSent: new Date(`${today}T00:00:00Z`) })).length, 0, 'a date-time DateSent matches that instant only');
    const onDay = await (await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Messages.json?To=${encodeURIComponent(to)}&DateSent=${today}`)).json();
    assert.equal(onDay.messages.length, 7);
    assert.equal((await client.messages.list({ to, dateSentAfter: new Date(clock.now() + 86400_000) })).length, 0);
    assert.equal((await client.messages.list({ to, dateSentBefore: new Date(clock.now() + 86400_000) })).length, 7);
    assert.equal((await client.messages.list({ to, from: '+19995550100' })).length, 0);
    const e = await restError(() => client.messages.page({ to, pageSize: 3, pageToken: 'nonsense' }));
    assert.equal(e.code, 20422);
  });

  test('redact with Body="", delete with DELETE (204); in-progress messages are refused with 20009', async () => {
    const m = await client.messages.create({ to: sim(7), body: 'secret text' });
    const early = await restError(() => client.messages(m.sid).update({ body: '' }));
    assert.equal(early.code, 20009);
    await settle(env, clock);
    const redacted = await client.messages(m.sid).update({ body: '' });
    assert.equal(redacted.body, '');
    assert.equal(redacted.status, 'delivered');
    const ours = (await env.req('GET', `/v1/messages/${idOf(m.sid, 'msg')}`)).json();
    assert.equal(ours.body, null);
    assert.equal((await restError(() => client.messages(m.sid).update({ body: 'new text' }))).code, 20422);

    const d = await client.messages.create({ to: sim(7), body: 'to delete' });
    await settle(env, clock);
    assert.equal(await client.messages(d.sid).remove(), true);
    const gone = await restError(() => client.messages(d.sid).fetch());
    assert.equal(gone.status, 404);
    assert.equal(gone.code, 20404);
    assert.ok(!(await client.messages.list({ to: sim(7) })).some((x) => x.sid === d.sid));
    assert.equal((await restError(() => client.messages(d.sid).remove())).status, 404);
    // The delivery record stays in our own API, without its text.
    const kept = (await env.req('GET', `/v1/messages/${idOf(d.sid, 'msg')}`)).json();
    assert.equal(kept.status, 'delivered');
    assert.equal(kept.body, null);
  });

  test('errors are RestExceptions with Twilio’s codes and statuses', async () => {
    let e = await restError(() => client.messages.create({ to: 'not a number', body: 'x' }));
    assert.equal(e.status, 400);
    assert.equal(e.code, 21211);
    assert.equal(e.moreInfo, 'https://www.twilio.com/docs/errors/21211');
    const optedOut = sim(8, '312');
    assert.equal((await env.req('POST', '/v1/consent', { body: { phone: optedOut, status: 'opted_out', purpose: 'all', channel: 'all', source: 'api' } })).statusCode, 201);
    e = await restError(() => client.messages.create({ to: optedOut, body: 'x' }));
    assert.equal(e.status, 400);
    assert.equal(e.code, 21610);
    e = await restError(() => client.messages.create({ to: sim(1), body: '' }));
    assert.equal(e.code, 21602);
    e = await restError(() => client.messages.create({ to: sim(1), body: 'x', from: '+19995550123' }));
    assert.equal(e.code, 21606);
    e = await restError(() => client.messages.create({ to: sim(1), body: 'x'.repeat(1601) }));
    assert.equal(e.code, 21617);
    e = await restError(() => client.messages.create({ to: sim(1), body: 'x', statusCallback: 'ftp://nope' }));
    assert.equal(e.code, 21609);
    e = await restError(() => client.messages.create({ to: sim(1), body: 'x', validityPeriod: 99999 }));
    assert.equal(e.code, 20422);
    e = await restError(() => twilioClient(base, creds.account_sid, 'f'.repeat(32)).messages.create({ to: sim(1), body: 'x' }));
    assert.equal(e.status, 401);
    assert.equal(e.code, 20003);
    e = await restError(() => client.messages(`SM${'0'.repeat(32)}`).fetch());
    assert.equal(e.status, 404);
    assert.equal(e.code, 20404);
    // Missing To (the library refuses to send that itself, so through HTTP), bad input, and
    // unknown paths: Twilio's body, with our CONTRACT §3 object beside it.
    const noTo = await raw('POST', `/2010-04-01/Accounts/${creds.account_sid}/Messages.json`, { form: { Body: 'x' } });
    assert.equal(noTo.status, 400);
    const body = await noTo.json();
    assert.equal(body.code, 21604);
    assert.equal(body.status, 400);
    assert.equal(body.more_info, 'https://www.twilio.com/docs/errors/21604');
    assert.equal(body.error.code, 'VALIDATION_ERROR');
    assert.ok(body.error.request_id);
    const unknown = await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Calls.json`);
    assert.equal(unknown.status, 404);
    assert.equal((await unknown.json()).code, 20404);
    const noAuth = await fetch(`${base}/2010-04-01/Accounts/${creds.account_sid}/Messages.json`);
    assert.equal(noAuth.status, 401);
    assert.match(String(noAuth.headers.get('www-authenticate')), /^Basic/);
    assert.equal((await noAuth.json()).code, 20003);
    const badPage = await raw('GET', `/2010-04-01/Accounts/${creds.account_sid}/Messages.json?PageSize=abc`);
    assert.equal(badPage.status, 400);
    assert.equal((await badPage.json()).code, 20422);
    // Nothing refused leaves a message behind.
    assert.equal((await client.messages.list({ to: optedOut })).length, 0);
  });

  test('another account’s SID is 404 20404, and test and live data stay apart', async () => {
    const other = await env.p.accounts.create('Other');
    const otherCreds = await env.p.twilio.accounts.credentials(other.id, 'test');
    // Our credentials on their path.
    const e = await restError(() => twilioClient(base, creds.account_sid, creds.auth_token, otherCreds.account_sid).messages.list());
    assert.equal(e.status, 404);
    assert.equal(e.code, 20404);
    // Their credentials, their path: none of our messages.
    const theirs = twilioClient(base, otherCreds.account_sid, otherCreds.auth_token);
    const mine = await client.messages.create({ to: sim(1), body: 'ours' });
    assert.equal((await restError(() => theirs.messages(mine.sid).fetch())).code, 20404);
    // Live credentials see no test message.
    const live = (await env.req('GET', '/v1/twilio/credentials', { token: env.liveKey })).json();
    const liveClient = twilioClient(base, live.account_sid, live.auth_token);
    assert.equal((await restError(() => liveClient.messages(mine.sid).fetch())).code, 20404);
    assert.ok(!(await liveClient.messages.list({ limit: 100 })).some((m) => m.sid === mine.sid));
  });

  test('API key SID + secret: the key’s own scopes and mode', async () => {
    const keys = (await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'], mode: 'test' } })).json();
    assert.ok(keys.id, JSON.stringify(keys));
    const sk = `SK${(await import('../src/twilio-compat/sids.ts')).sidOf(keys.id).slice(2)}`;
    assert.match(sk, /^SK[0-9a-f]{32}$/);
    const reader = twilioClient(base, sk, keys.secret, creds.account_sid);
    assert.ok(Array.isArray(await reader.messages.list({ limit: 1 })));
    const e = await restError(() => reader.messages.create({ to: sim(1), body: 'x' }));
    assert.equal(e.status, 403);
    assert.equal(e.code, 20403);
    const wrong = await restError(() => twilioClient(base, sk, 'sb_test_wrong', creds.account_sid).messages.list({ limit: 1 }));
    assert.equal(wrong.code, 20003);
    // Another key's secret under this SID is refused.
    const writer = await env.key({ scopes: ['messages:send'] });
    assert.equal((await restError(() => twilioClient(base, sk, writer, creds.account_sid).messages.list({ limit: 1 }))).code, 20003);
  });

  test('I-Twilio-Idempotency-Token: the same token returns the first message; another request with it is 409', async () => {
    const path = `/2010-04-01/Accounts/${creds.account_sid}/Messages.json`;
    const headers = { 'i-twilio-idempotency-token': 'order-42' };
    const a = await (await raw('POST', path, { form: { To: sim(9), Body: 'once' }, headers })).json();
    const b = await (await raw('POST', path, { form: { To: sim(9), Body: 'once' }, headers })).json();
    assert.equal(a.sid, b.sid);
    const c = await raw('POST', path, { form: { To: sim(9), Body: 'different' }, headers });
    assert.equal(c.status, 409);
    assert.equal((await c.json()).code, 20409);
    assert.equal((await client.messages.list({ to: sim(9) })).length, 1);
  });

  test('ContentSid + ContentVariables render one of our templates', async () => {
    const tpl = (await env.req('POST', '/v1/templates', { body: { name: 'appointment', body: 'Hi {{ name }}, see you at {{ time }}.', variables: ['name', 'time'] } })).json();
    const contentSid = (await import('../src/twilio-compat/sids.ts')).sidOf(tpl.id);
    assert.match(contentSid, /^HX/);
    const m = await client.messages.create({ to: sim(1), contentSid, contentVariables: JSON.stringify({ 1: 'Ana', 2: '10:00' }) });
    assert.equal(m.body, 'Hi Ana, see you at 10:00.');
    const named = await client.messages.create({ to: sim(1), contentSid, contentVariables: JSON.stringify({ name: 'Bo', time: 'noon' }) });
    assert.equal(named.body, 'Hi Bo, see you at noon.');
    assert.equal((await restError(() => client.messages.create({ to: sim(1), contentSid: `HX${'0'.repeat(32)}` }))).code, 21655);
    assert.equal((await restError(() => client.messages.create({ to: sim(1), contentSid, contentVariables: '{"1": "Ana"}' }))).code, 21656);
    assert.equal((await restError(() => client.messages.create({ to: sim(1), contentSid, contentVariables: 'not json' }))).code, 21656);
  });

  test('failed messages carry Twilio’s error codes for our error classes; expired is 30036', async () => {
    const cases: Array<[number, string, number]> = [
      [11, 'undelivered', 30007], // FILTERED by the carrier
      [13, 'failed', 30008], // UNKNOWN_ERROR
      [14, 'failed', 21610], // OPTED_OUT reported by the carrier
      [15, 'failed', 30005], // INVALID_NUMBER reported by the carrier
    ];
    const sent = [];
    for (const [yy] of cases) sent.push(await client.messages.create({ to: sim(yy, '713'), body: `case ${yy}`, statusCallback: receiver.url(`/class-${yy}`) }));
    // Number 18: accepted, never a receipt; it expires when its validity period runs out.
    const silent = await client.messages.create({ to: sim(18, '713'), body: 'no receipt', validityPeriod: 60, statusCallback: receiver.url('/class-18') });
    await settle(env, clock, 12);
    for (const [i, [yy, status, code]] of cases.entries()) {
      const m = await client.messages(sent[i].sid).fetch();
      assert.equal(m.status, status, `number ${yy}`);
      assert.equal(m.errorCode, code, `number ${yy}`);
      const last = receiver.received.filter((r) => r.path === `/class-${yy}`).at(-1)!;
      assert.equal(last.params.MessageStatus, status);
      assert.equal(last.params.ErrorCode, String(code));
    }
    clock.advance(61_000);
    await settle(env, clock, 3);
    const expired = await client.messages(silent.sid).fetch();
    assert.equal(expired.status, 'undelivered', 'a carrier had it and no receipt came');
    assert.equal(expired.errorCode, 30036);
    assert.equal(receiver.received.filter((r) => r.path === '/class-18').at(-1)!.params.ErrorCode, '30036');
  });

  test('bad input of any shape is a Twilio 400, never a 500; the OpenAPI document lists these routes', async () => {
    const path = `/2010-04-01/Accounts/${creds.account_sid}/Messages.json`;
    for (const body of ['{"To": 5, "Body": "x"}', '{"To": {"a": 1}}', '[1,2]', '{"To": "+12025550100", "Body": ["a", {"b": 1}]}', 'not json']) {
      const r = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: basic(creds.account_sid, creds.auth_token), 'content-type': 'application/json' }, body });
      assert.equal(r.status, 400, body);
      const j = await r.json();
      assert.equal(typeof j.code, 'number', body);
      assert.equal(j.error.code, 'VALIDATION_ERROR', body);
    }
    const weird = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: basic(creds.account_sid, creds.auth_token), 'content-type': 'application/x-www-form-urlencoded' }, body: 'To=%E0%A4%A&Body=%' });
    assert.ok(weird.status === 400, String(weird.status));
    const plain = await fetch(`${base}${path}`, { method: 'POST', headers: { authorization: basic(creds.account_sid, creds.auth_token), 'content-type': 'text/plain' }, body: 'To=x' });
    assert.equal(plain.status, 400);
    assert.equal((await plain.json()).code, 20422);
    const doc = (await env.req('GET', '/openapi.json')).json();
    assert.ok(doc.paths['/2010-04-01/Accounts/{AccountSid}/Messages.json']?.post);
    assert.ok(doc.paths['/2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json']?.delete);
    assert.ok(doc.paths['/v1/twilio/credentials']?.get);
  });

  test('the account resource answers a credential check', async () => {
    const a = await client.api.v2010.accounts(creds.account_sid).fetch();
    assert.equal(a.sid, creds.account_sid);
    assert.equal(a.status, 'active');
  });
});

describe('Twilio-compatible API under load', () => {
  test('an account over its backlog gets 429 20429 with Retry-After', async () => {
    const env = await testEnv({ config: { SWITCHBOARD_MAX_ACCOUNT_BACKLOG: 1 } });
    try {
      await env.app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(env.app.server.address() as AddressInfo).port}`;
      const creds = (await env.req('GET', '/v1/twilio/credentials')).json();
      const client = twilioClient(base, creds.account_sid, creds.auth_token);
      await client.messages.create({ to: sim(1), body: 'first' });
      const res = await fetch(`${base}/2010-04-01/Accounts/${creds.account_sid}/Messages.json`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${creds.account_sid}:${creds.auth_token}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ To: sim(2), Body: 'second' }).toString(),
      });
      assert.equal(res.status, 429);
      assert.ok(res.headers.get('retry-after'));
      assert.equal((await res.json()).code, 20429);
    } finally {
      await env.close();
    }
  });
});
