// Minimum necessary in the logs (issue 9): the log stream of a platform that sends, receives,
// signs in with a key and an OAuth client, delivers webhooks, and fails in several ways — at
// trace level, so every request is logged — holds no body, token, secret, password, cookie,
// Authorization header or full phone number.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { createLogger, maskPhonesIn, scrubForLog } from '../src/logger.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

describe('what the logs never contain', () => {
  const lines: string[] = [];
  const clock = new ManualClock(Date.now());
  const rx = new Receiver();
  let env: TestEnv;
  const body = `secret-body-${randomBytes(5).toString('hex')}`;
  const inbound = `inbound-text-${randomBytes(5).toString('hex')}`;
  const password = `pw-${randomBytes(6).toString('hex')}`;
  const secrets: string[] = [];

  before(async () => {
    env = await testEnv({ clock, logger: createLogger('trace', { write: (s: string) => void lines.push(s) }), config: { LOG_LEVEL: 'trace' } });
    secrets.push(env.testKey, env.liveKey);
    await rx.start();
    rx.behaviour = 'error500';
    const hook = (await env.req('POST', '/v1/webhooks', { body: { url: rx.url } })).json();
    secrets.push(hook.secret);
    const conn = await env.req('POST', '/v1/connectors', { token: env.liveKey, body: { name: 'refuses', type: 'simulator', config: { password, reject_credentials: true } } });
    assert.equal(conn.statusCode, 201, conn.body);
    const client = (await env.req('POST', '/v1/clients', { body: { scopes: ['messages:send', 'messages:read'], mode: 'test' } })).json();
    secrets.push(client.client_secret);
    const token = await env.req('POST', '/oauth/token', { token: null, payload: `grant_type=client_credentials&client_id=${client.client_id}&client_secret=${encodeURIComponent(client.client_secret)}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const access = token.json().access_token as string;
    secrets.push(access);
    await env.req('POST', '/oauth/token', { token: null, payload: `grant_type=client_credentials&client_id=${client.client_id}&client_secret=wrong-${password}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } });

    // Sends (with an API key and with the OAuth token), a failure at the carrier, an inbound reply.
    for (const to of [sim(0), sim(13), sim(10)]) assert.equal((await env.req('POST', '/v1/messages', { body: { to, body } })).statusCode, 202);
    assert.equal((await env.req('POST', '/v1/messages', { token: access, body: { to: sim(1), body, status_callback: `${rx.url}?token=${password}` } })).statusCode, 202);
    assert.equal((await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(2), body } })).statusCode, 202);
    assert.equal((await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(3), body: inbound } })).statusCode, 201);
    await env.req('GET', `/v1/messages?to=${encodeURIComponent(sim(3))}`, { headers: { cookie: `sb_session=${password}` } });
    await env.req('GET', '/v1/messages', { token: `sb_test_${password}` });
    await env.req('POST', '/v1/messages', { body: { to: '+1 202 555 0199x', body } });
    // An unhandled error: a stored row that no longer parses (its text is quoted by JSON.parse).
    const m = (await env.req('POST', '/v1/messages', { body: { to: sim(4), body } })).json();
    await env.p.storage.db.updateTable('messages').set({ metadata: `{"note": "${body} ${sim(4)}` }).where('id', '=', m.id).execute();
    assert.equal((await env.req('GET', `/v1/messages/${m.id}`)).statusCode, 500);
    for (let i = 0; i < 10; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    // A call site that forgot itself: the logger still censors.
    env.p.log.warn({ message: { body, to: sim(5), config: { password } }, headers: { authorization: `Bearer ${env.testKey}` } }, `about ${sim(5)}`);
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  test('the stream was captured, at trace level, with requests and failures in it', () => {
    const all = lines.join('');
    assert.ok(lines.length > 30, `${lines.length} lines`);
    assert.match(all, /incoming request/);
    assert.match(all, /unhandled error/);
    assert.match(all, /\+1202555\*\*\*\*/, 'numbers appear masked');
  });

  test('no body, token, secret, password, cookie, Authorization header or full phone number', () => {
    const all = lines.join('');
    for (const s of [body, inbound, password, ...secrets]) assert.ok(!all.includes(s), `found ${s.slice(0, 12)}… in the logs`);
    assert.ok(!/Bearer /i.test(all), 'an Authorization header value');
    assert.ok(!/sb_session=/.test(all), 'a cookie');
    assert.ok(!/whsec_/.test(all), 'a webhook secret');
    const phones = all.match(/(\+|%2B)1\d{10}/g);
    assert.equal(phones, null, `full numbers: ${phones?.slice(0, 3).join(', ')}`);
  });

  test('the scrubbing itself', () => {
    assert.equal(maskPhonesIn('to +12025550123 and %2B14155552671.'), 'to +1202555**** and %2B1415555****.');
    assert.deepEqual(scrubForLog({ a: { Body: 'x', n: '+12025550123', list: [{ token: 't' }] } }), { a: { Body: '[redacted]', n: '+1202555****', list: [{ token: '[redacted]' }] } });
  });
});
