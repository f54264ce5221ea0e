// The seams of issue 9 with the capabilities that landed beside it (media, voice, the
// Twilio-compatible API, campaigns, the review queue), through HTTP: a viewer sees no body or
// media there either, a session is no Twilio credential, account A reaches nothing of account
// B's media or Twilio messages; the Twilio API's redaction and deletion remove what retention
// removes (read below the sealing plugin); the actions of those capabilities are audited.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { webhookDb } from '../src/webhooks/webhook-tables.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { PNG } from './media-fixtures.ts';
import { person } from './people-helpers.ts';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('security seams', () => {
  const clock = new ManualClock(Date.parse('2026-03-02T15:00:00Z'));
  let env: TestEnv;
  const SECRET = 'potassium 6.1 PRIVATE';
  let twilio: { account_sid: string; auth_token: string };

  const settle = async () => {
    for (let i = 0; i < 8; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
  };
  const upload = (body: Buffer, contentType: string, token = env.testKey) =>
    env.app.inject({ method: 'POST', url: '/v1/media', headers: { 'content-type': contentType, authorization: `Bearer ${token}` }, payload: body });
  const tw = (method: 'GET' | 'POST' | 'DELETE', path: string, opts: { form?: Record<string, string>; auth?: string; headers?: Record<string, string> } = {}) =>
    env.app.inject({
      method,
      url: `/2010-04-01/Accounts/${twilio.account_sid}${path}`,
      headers: { authorization: opts.auth ?? basic(twilio.account_sid, twilio.auth_token), ...(opts.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}), ...opts.headers },
      payload: opts.form ? new URLSearchParams(opts.form).toString() : undefined,
    });

  before(async () => {
    env = await testEnv({ clock });
    twilio = (await env.req('GET', '/v1/twilio/credentials')).json();
  });
  after(() => env.close());

  const audit = async (query: string) => (await env.req('GET', `/v1/audit?limit=200&${query}`)).json().data as Array<{ action: string; actor: { type: string; id: string }; target: { type: string; id: string } | null; details: Record<string, unknown> }>;

  /** Every stored value of a message's rows, opened as the platform would, as one text. */
  const storedFor = async (id: string): Promise<string> => {
    const raw = env.p.storage.db.withoutPlugins() as unknown as import('kysely').Kysely<any>;
    const open = (v: unknown, ctx: string) => (typeof v === 'string' && v ? (env.p.sealer.tryOpen(v, [ctx]) as { ok: boolean; text?: string }) : null);
    const parts: string[] = [];
    const add = (rows: Array<Record<string, unknown>>, table: string) => {
      for (const r of rows) for (const [k, v] of Object.entries(r)) parts.push(String(open(v, `${table}.${k}`)?.text ?? v ?? ''));
    };
    add(await raw.selectFrom('messages').selectAll().where('id', '=', id).execute(), 'messages');
    add(await raw.selectFrom('message_events').selectAll().where('message_id', '=', id).execute(), 'message_events');
    add(await raw.selectFrom('outbox').selectAll().where('message_id', '=', id).execute(), 'outbox');
    add(await raw.selectFrom('pending_receipts').selectAll().where('message_id', '=', id).execute(), 'pending_receipts');
    const deliveries = raw.selectFrom('webhook_deliveries').select('id').where('message_id', '=', id);
    add(await raw.selectFrom('webhook_attempts').selectAll().where('delivery_id', 'in', deliveries).execute(), 'webhook_attempts');
    return parts.join('\n');
  };

  test('Twilio redaction (Body="") and DELETE remove what retention removes: body, media, raw payloads, webhook copies and echoes; audited', async () => {
    // A receiver that echoes what it gets, as some do: its answer is stored with the attempt.
    const echo: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.concat(chunks)));
    });
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    try {
      const hook = await env.req('POST', '/v1/webhooks', { body: { url: `http://127.0.0.1:${(echo.address() as AddressInfo).port}/hook` } });
      assert.equal(hook.statusCode, 201, hook.body);
      const TEXT = 'hemoglobin 9.9 CONFIDENTIAL';
      const number = (await env.p.accounts.get(env.accountId)).default_sender!;
      const inbound = await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(40), to: number, body: `inbound ${TEXT}` } });
      assert.equal(inbound.statusCode, 201, inbound.body);
      const sent = await tw('POST', '/Messages.json', { form: { To: sim(41), Body: `outbound ${TEXT}`, MediaUrl: 'https://media.example.com/CONFIDENTIAL-scan.png' } });
      assert.equal(sent.statusCode, 201, sent.body);
      await settle();
      const outboundId = (await env.req('GET', `/v1/messages?direction=outbound&limit=100`)).json().data.find((m: { body: string }) => m.body === `outbound ${TEXT}`).id;
      const inboundId = inbound.json().id;
      for (const id of [inboundId, outboundId]) {
        const before = await storedFor(id);
        assert.ok(before.includes('CONFIDENTIAL'), `the text is stored for ${id} before (sanity)`);
      }
      assert.ok((await storedFor(inboundId)).includes('"raw"'), 'the inbound raw payload is stored');
      const echoed = await webhookDb(env.p.storage).selectFrom('webhook_attempts').select('response_body').where('response_body', 'is not', null).execute();
      assert.ok(echoed.some((a) => a.response_body!.includes('CONFIDENTIAL')), 'a receiver echoed the text back (sanity)');
      const inboundSid = (await tw('GET', '/Messages.json?PageSize=100')).json().messages.find((m: { body: string }) => m.body === `inbound ${TEXT}`).sid;

      const redacted = await tw('POST', `/Messages/${sent.json().sid}.json`, { form: { Body: '' } });
      assert.equal(redacted.statusCode, 200, redacted.body);
      assert.equal(redacted.json().body, '');
      assert.equal((await tw('DELETE', `/Messages/${inboundSid}.json`)).statusCode, 204);

      const raw = env.p.storage.db.withoutPlugins();
      for (const id of [inboundId, outboundId]) {
        const left = await storedFor(id);
        assert.ok(!left.includes('CONFIDENTIAL'), `nothing of the text or media is left for ${id}: ${left.slice(0, 2000)}`);
        const row = await raw.selectFrom('messages').select(['body', 'media_urls', 'redacted_at', 'status']).where('id', '=', id).executeTakeFirstOrThrow();
        assert.equal(row.body, null);
        assert.equal(row.media_urls, null);
        assert.ok(row.redacted_at, 'redacted_at set, as retention sets it');
        const v1 = (await env.req('GET', `/v1/messages/${id}`)).json();
        assert.equal(v1.body_redacted, true);
        assert.deepEqual(v1.media_urls, []);
      }
      // The same as retention's redaction does to a third message.
      const third = await env.req('POST', '/v1/messages', { body: { to: sim(42), body: `third ${TEXT}` } });
      await settle();
      await env.p.storage.db.transaction().execute((tx) => env.p.retention.redact(tx, [third.json().id], clock.now()));
      const thirdRow = await raw.selectFrom('messages').select(['body', 'media_urls']).where('id', '=', third.json().id).executeTakeFirstOrThrow();
      assert.deepEqual(thirdRow, { body: null, media_urls: null });
      assert.ok(!(await storedFor(third.json().id)).includes('CONFIDENTIAL'));

      const entries = await audit('action=message.*');
      const red = entries.find((e) => e.action === 'message.redacted' && e.target?.id === outboundId);
      const del = entries.find((e) => e.action === 'message.deleted' && e.target?.id === inboundId);
      assert.ok(red && del, JSON.stringify(entries));
      assert.deepEqual(red.actor, { type: 'twilio', id: twilio.account_sid });
      assert.equal(red.details.via, 'twilio-compat');
    } finally {
      await new Promise((r) => echo.close(r));
    }
  });

  test('media, Twilio credentials, IncomingPhoneNumbers, key rotations and data settings are audited', async () => {
    const up = await upload(PNG, 'image/png');
    const mediaId = up.json().id;
    assert.equal((await env.req('DELETE', `/v1/media/${mediaId}`)).statusCode, 204);
    const media = await audit(`target=${mediaId}`);
    assert.deepEqual(media.map((e) => e.action).sort(), ['media.deleted', 'media.uploaded']);
    assert.equal(media.find((e) => e.action === 'media.uploaded')!.details.content_type, 'image/png');
    assert.equal(media[0].actor.type, 'api_key');

    // The credentials were made in before() by GET /v1/twilio/credentials with the admin key.
    const made = (await audit('action=twilio_credentials.created')).find((e) => e.target?.id === twilio.account_sid);
    assert.equal(made?.actor.type, 'api_key');
    const rotated = await env.req('POST', '/v1/twilio/credentials', { body: { rotate: true } });
    assert.equal(rotated.statusCode, 200);
    twilio = rotated.json();
    const rot = (await audit('action=twilio_credentials.rotated'))[0];
    assert.equal(rot.target?.id, twilio.account_sid);
    assert.ok(!JSON.stringify(rot).includes(twilio.auth_token), 'never the token');

    const pn = await tw('POST', '/IncomingPhoneNumbers.json', { form: { PhoneNumber: '+12025550188', FriendlyName: 'Front desk' } });
    assert.equal(pn.statusCode, 201, pn.body);
    const senderId = (await env.req('GET', '/v1/senders')).json().data.find((s: { address: string }) => s.address === '+12025550188').id;
    assert.equal((await tw('POST', `/IncomingPhoneNumbers/${pn.json().sid}.json`, { form: { SmsUrl: 'https://app.example.com/sms?token=SECRET123' } })).statusCode, 200);
    assert.equal((await tw('DELETE', `/IncomingPhoneNumbers/${pn.json().sid}.json`)).statusCode, 204);
    const numbers = await audit(`target=${senderId}`);
    assert.deepEqual(numbers.map((e) => e.action), ['sender.deleted', 'sender.updated', 'sender.created']);
    for (const e of numbers) assert.deepEqual(e.actor, { type: 'twilio', id: twilio.account_sid });
    assert.equal(numbers[1].details.sms_url, 'https://app.example.com/sms');
    assert.ok(!JSON.stringify(numbers).includes('SECRET123'), 'the URL without its query');

    const settings = await env.req('PATCH', '/v1/settings', { body: { body_retention_days: 30, mask_phone_numbers: true } });
    assert.equal(settings.statusCode, 200, settings.body);
    const changed = (await audit('action=settings.updated')).find((e) => e.target?.id === 'data');
    assert.deepEqual(changed?.details.changes, { body_retention_days: { from: null, to: 30 }, mask_phone_numbers: { from: false, to: true } });
    const hook = (await env.req('POST', '/v1/webhooks', { body: { url: 'https://hooks.example.com/lean', include_body: false } })).json();
    assert.equal((await env.req('PATCH', `/v1/webhooks/${hook.id}`, { body: { include_body: true } })).statusCode, 200);
    const hookEntries = await audit(`target=${hook.id}`);
    assert.equal(hookEntries.find((e) => e.action === 'webhook.created')?.details.include_body, false);
    assert.equal(hookEntries.find((e) => e.action === 'webhook.updated')?.details.include_body, true);

    const { rotation } = await env.p.keyRotation.request();
    const installation = await env.p.audit.verify('_installation');
    assert.ok(installation.ok, JSON.stringify(installation.fault));
    const entry = await env.p.storage.db.selectFrom('audit_log').selectAll().where('action', '=', 'key_rotation.requested').where('target_id', '=', rotation.id).executeTakeFirst();
    assert.equal(entry?.chain, '_installation');
    assert.equal(entry?.actor_type, 'system');
    assert.equal(JSON.parse(entry!.details).target_key_id, env.p.sealer.keyId);
  });

  test('a viewer sees no body in the review queue or in a campaign’s recipients', async () => {
    // sim(13): the simulator answers UNKNOWN_ERROR until the message lands in the review queue.
    const failing = await env.req('POST', '/v1/messages', { body: { to: sim(13), body: `Result: ${SECRET}` } });
    assert.equal(failing.statusCode, 202, failing.body);
    const campaign = await env.req('POST', '/v1/campaigns', {
      body: { name: 'results', audience: { csv: `phone,result\n${sim(20)},${SECRET}\n${sim(21)},${SECRET}\n` }, body: 'Your result: {{ result }}', purpose: 'transactional' },
    });
    assert.equal(campaign.statusCode, 201, campaign.body);
    assert.equal((await env.req('POST', `/v1/campaigns/${campaign.json().id}/start`)).statusCode, 200);
    await settle();
    assert.ok((await env.req('GET', '/v1/review')).json().data.some((r: { message_id: string }) => r.message_id === failing.json().id), 'the review item exists');
    const recipients = await env.req('GET', `/v1/campaigns/${campaign.json().id}/recipients`);
    assert.equal(recipients.json().data.length, 2);
    const sentId = recipients.json().data[0].message_id;
    assert.ok(sentId, 'the campaign sent');
    assert.ok((await env.req('GET', `/v1/messages/${sentId}`)).json().body.includes(SECRET), 'a key reads the body');

    const { req } = await person(env, 'viewer', { mode: 'test' });
    for (const url of ['/v1/review', `/v1/campaigns/${campaign.json().id}/recipients`, `/v1/messages/${sentId}`, `/v1/messages/${failing.json().id}`, `/v1/messages/${failing.json().id}/events`, '/v1/messages?limit=100']) {
      const res = await req('GET', url);
      assert.equal(res.statusCode, 200, url);
      assert.ok(!res.body.includes('potassium'), `${url} shows no body to a viewer`);
    }
  });

  test('a viewer gets a media file’s details without its URL, and uploads or deletes nothing', async () => {
    const up = await upload(PNG, 'image/png');
    assert.equal(up.statusCode, 201, up.body);
    const media = up.json();
    const mms = await env.req('POST', '/v1/messages', { body: { to: sim(2), channel: 'mms', body: 'your scan', media_urls: [media.url] } });
    assert.equal(mms.statusCode, 202, mms.body);
    const { req } = await person(env, 'viewer', { mode: 'test' });
    const seen = await req('GET', `/v1/media/${media.id}`);
    assert.equal(seen.statusCode, 200, seen.body);
    assert.equal(seen.json().url, null);
    assert.equal(seen.json().url_redacted, true);
    assert.equal(seen.json().content_type, 'image/png', 'the rest of the details are there');
    assert.ok(!seen.body.includes(media.url.split('/').pop()), 'no part of the tokenised URL');
    const message = (await req('GET', `/v1/messages/${mms.json().id}`)).json();
    assert.deepEqual(message.media_urls, []);
    assert.ok(!JSON.stringify((await req('GET', `/v1/messages/${mms.json().id}/events`)).json()).includes(media.url.split('/').pop()));
    assert.equal((await req('DELETE', `/v1/media/${media.id}`)).statusCode, 403);
    // A person who reads bodies, and a key, get the URL; the public URL still serves carriers.
    assert.equal((await (await person(env, 'agent', { mode: 'test' })).req('GET', `/v1/media/${media.id}`)).json().url, media.url);
    assert.equal((await env.req('GET', `/v1/media/${media.id}`)).json().url, media.url);
    assert.equal((await env.app.inject({ method: 'GET', url: new URL(media.url).pathname })).statusCode, 200);
  });

  test('a session is not a Twilio credential: the Twilio-compatible API answers 401 to the cookie', async () => {
    const owner = await person(env, 'owner', { mode: 'test' });
    const cookie = { cookie: `sb_session=${owner.session.cookie}`, 'x-csrf-token': owner.session.csrf };
    for (const [method, path] of [
      ['GET', '/Messages.json'],
      ['GET', '.json'],
      ['POST', '/Messages.json'],
    ] as const) {
      const res = await env.app.inject({ method, url: `/2010-04-01/Accounts/${twilio.account_sid}${path}`, headers: cookie });
      assert.equal(res.statusCode, 401, `${method} ${path}: ${res.body}`);
      assert.equal(res.json().code, 20003);
    }
  });

  test('account A reaches nothing of account B’s media or Twilio messages', async () => {
    const other = await env.p.accounts.create('Other clinic');
    const bKey = await env.key({ accountId: other.id });
    const bMedia = (await upload(PNG, 'image/png', bKey)).json();
    assert.match(bMedia.id, /^media_/);
    const bTwilio = (await env.req('GET', '/v1/twilio/credentials', { token: bKey })).json();
    const bSent = await env.app.inject({
      method: 'POST',
      url: `/2010-04-01/Accounts/${bTwilio.account_sid}/Messages.json`,
      headers: { authorization: basic(bTwilio.account_sid, bTwilio.auth_token), 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ To: sim(30), Body: 'B private' }).toString(),
    });
    assert.equal(bSent.statusCode, 201, bSent.body);
    const bSid = bSent.json().sid;

    assert.equal((await env.req('GET', `/v1/media/${bMedia.id}`)).statusCode, 404);
    assert.equal((await env.req('DELETE', `/v1/media/${bMedia.id}`)).statusCode, 404);
    const a = await person(env, 'owner', { mode: 'test' });
    assert.equal((await a.req('GET', `/v1/media/${bMedia.id}`)).statusCode, 404);
    // A's credentials on B's account SID, and B's message SID under A's account.
    assert.equal((await env.app.inject({ method: 'GET', url: `/2010-04-01/Accounts/${bTwilio.account_sid}/Messages.json`, headers: { authorization: basic(twilio.account_sid, twilio.auth_token) } })).statusCode, 404);
    for (const method of ['GET', 'DELETE'] as const) assert.equal((await tw(method, `/Messages/${bSid}.json`)).statusCode, 404, method);
    assert.equal((await tw('POST', `/Messages/${bSid}.json`, { form: { Body: '' } })).statusCode, 404);
    assert.ok(!(await tw('GET', '/Messages.json?PageSize=1000')).body.includes(bSid));
    // B's message is untouched.
    const bView = await env.app.inject({ method: 'GET', url: `/2010-04-01/Accounts/${bTwilio.account_sid}/Messages/${bSid}.json`, headers: { authorization: basic(bTwilio.account_sid, bTwilio.auth_token) } });
    assert.equal(bView.json().body, 'B private');
  });
});

describe('rate limits on the Twilio-compatible API', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_RATE_LIMIT_PER_CREDENTIAL: 4, SWITCHBOARD_RATE_LIMIT_PER_ACCOUNT: 6 } });
  });
  after(() => env.close());

  test('a Twilio credential over its limit gets Twilio’s 429 (code 20429) with Retry-After; bad credentials are refused before any count', async () => {
    const creds = (await env.req('GET', '/v1/twilio/credentials')).json();
    const get = (auth: string) => env.app.inject({ method: 'GET', url: `/2010-04-01/Accounts/${creds.account_sid}/Messages.json`, headers: { authorization: auth } });
    const token = basic(creds.account_sid, creds.auth_token);
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await get(token));
    const limited = answers.filter((r) => r.statusCode === 429);
    assert.ok(answers.filter((r) => r.statusCode === 200).length <= 4, answers.map((r) => r.statusCode).join(','));
    assert.ok(limited.length >= 1, answers.map((r) => r.statusCode).join(','));
    const body = limited[0].json();
    assert.equal(body.code, 20429);
    assert.equal(body.status, 429);
    assert.equal(body.more_info, 'https://www.twilio.com/docs/errors/20429');
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.equal(body.error.details.scope, 'credential');
    assert.match(String(limited[0].headers['retry-after']), /^\d+$/);
    // Bad credentials are refused as before, not counted against anyone.
    assert.equal((await get(basic(creds.account_sid, 'wrong'))).statusCode, 401);
  });
});
