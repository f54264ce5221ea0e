// The seams of issue 9 with the capabilities that landed beside it (media, voice, the
// Twilio-compatible API, campaigns, the review queue), through HTTP: a viewer sees no body or
// media there either, a session is no Twilio credential, account A reaches nothing of account
// B's media or Twilio messages.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
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
