// People and dashboard sessions through HTTP (CONTRACT §10, interfaces §4): sign-in that never
// says whether an email exists, lockouts held in the database, the cookie's attributes, CSRF,
// idle and absolute expiry, revocation, test/live mode, TOTP, the users API.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { PASSWORD, addUser, as, person, postSession, signIn } from './people-helpers.ts';

describe('sessions', () => {
  const clock = new ManualClock(Date.parse('2030-01-07T09:00:00Z'));
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock, config: { SWITCHBOARD_PUBLIC_URL: 'https://switchboard.clinic.example' } });
  });
  after(() => env.close());

  test('sign-in sets an HttpOnly, SameSite=Strict, Secure cookie and answers the session body', async () => {
    const user = await addUser(env, 'sender');
    const s = await signIn(env, user.email.toUpperCase());
    assert.match(s.setCookie, /^sb_session=sbs_[A-Za-z0-9_-]{43};/);
    assert.match(s.setCookie, /; HttpOnly/);
    assert.match(s.setCookie, /; SameSite=Strict/);
    assert.match(s.setCookie, /; Secure/);
    assert.match(s.setCookie, /; Path=\//);
    assert.equal(s.body.user.id, user.id);
    assert.equal(s.body.user.role, 'sender');
    assert.equal(s.body.user.totp_enabled, false);
    assert.deepEqual(s.body.account, { id: env.accountId, name: 'Test account' });
    assert.equal(s.body.mode, 'live');
    assert.equal(s.body.bodies, true);
    assert.ok((s.body.scopes as string[]).includes('messages:send'));
    assert.equal(typeof s.csrf, 'string');

    const got = await as(env, s)('GET', '/v1/session');
    assert.equal(got.statusCode, 200);
    assert.equal(got.json().user.email, user.email);
    assert.equal(got.json().csrf_token, s.csrf);

    const rows = await env.p.storage.db.selectFrom('sessions').selectAll().execute();
    assert.ok(!JSON.stringify(rows).includes(s.cookie), 'the token is stored only as a hash');
    const users = await env.p.storage.db.selectFrom('users').select('password_hash').where('id', '=', user.id).execute();
    assert.match(users[0].password_hash, /^\$argon2id\$/);
  });

  test('a wrong password and an unknown email get the same answer', async () => {
    const user = await addUser(env, 'viewer');
    const wrong = await postSession(env, { email: user.email, password: 'not the password at all' });
    const unknown = await postSession(env, { email: 'nobody@clinic.example', password: 'not the password at all' });
    for (const r of [wrong, unknown]) {
      assert.equal(r.statusCode, 401);
      assert.equal(r.json().error.code, 'AUTH_FAILED');
      assert.equal(r.headers['set-cookie'], undefined);
    }
    assert.equal(wrong.json().error.message, unknown.json().error.message);
    assert.deepEqual(wrong.json().error.details, unknown.json().error.details);
    assert.equal((await env.req('GET', '/v1/session', { token: null })).statusCode, 401);
  });

  test('a sign-in must be JSON (no form from another site can sign a visitor in)', async () => {
    const user = await addUser(env, 'viewer');
    const res = await env.app.inject({ method: 'POST', url: '/v1/session', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=${encodeURIComponent(user.email)}&password=${encodeURIComponent(PASSWORD)}` });
    assert.equal(res.statusCode, 400);
    assert.equal(res.headers['set-cookie'], undefined);
  });

  test('repeated failures lock the email out, in the database, for known and unknown emails alike', async () => {
    const user = await addUser(env, 'agent');
    for (const email of [user.email, 'ghost@clinic.example']) {
      for (let i = 0; i < 5; i++) assert.equal((await postSession(env, { email, password: `wrong password ${i}` })).statusCode, 401);
      const locked = await postSession(env, { email, password: email === user.email ? PASSWORD : 'x' });
      assert.equal(locked.statusCode, 429, email);
      assert.equal(locked.json().error.code, 'RATE_LIMITED');
      assert.ok(Number(locked.headers['retry-after']) > 0);
    }
    // A restart keeps the lockout: it is a row.
    await env.restart({ clock });
    assert.equal((await postSession(env, { email: user.email, password: PASSWORD })).statusCode, 429);
    clock.advance(15 * 60_000 + 1000);
    assert.equal((await postSession(env, { email: user.email, password: PASSWORD })).statusCode, 200);
  });

  test('CSRF: a cookie write without or with a wrong X-CSRF-Token is refused and changes nothing', async () => {
    const { req, session } = await person(env, 'admin', { mode: 'test' });
    const before = (await req('GET', '/v1/keys')).json().data.length;
    for (const csrf of [false, 'wrong', `${session.csrf.slice(0, -1)}A`] as const) {
      const res = await req('POST', '/v1/keys', { scopes: ['messages:read'] }, { csrf });
      assert.equal(res.statusCode, 403, String(csrf));
      assert.equal(res.json().error.code, 'FORBIDDEN');
      assert.deepEqual(res.json().error.details, { reason: 'csrf' });
    }
    const mode = await req('PATCH', '/v1/session', { mode: 'live' }, { csrf: false });
    assert.equal(mode.statusCode, 403);
    assert.equal((await req('GET', '/v1/session')).json().mode, 'test');
    assert.equal((await req('GET', '/v1/keys')).json().data.length, before, 'no key was created');
    const ok = await req('POST', '/v1/keys', { scopes: ['messages:read'] });
    assert.equal(ok.statusCode, 201);
    assert.equal(ok.json().created_by, session.body.user.id);
    // A bearer request needs no CSRF token, even with a cookie beside it.
    const bearer = await env.req('POST', '/v1/keys', { body: { scopes: ['messages:read'] }, headers: { cookie: `sb_session=${session.cookie}` } });
    assert.equal(bearer.statusCode, 201);
    assert.match(bearer.json().created_by, /^key_/);
  });

  test('test and live: a session sees one mode at a time, and PATCH switches', async () => {
    const { req } = await person(env, 'sender', { mode: 'test' });
    const testMsg = (await req('POST', '/v1/messages', { to: sim(0), body: 'sandbox' })).json();
    assert.equal(testMsg.mode, 'test');
    const liveMsg = (await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(0), body: 'real' } })).json();
    assert.equal((await req('GET', `/v1/messages/${liveMsg.id}`)).statusCode, 404);
    assert.ok((await req('GET', '/v1/messages?limit=1000')).json().data.every((m: { mode: string }) => m.mode === 'test'));
    const switched = await req('PATCH', '/v1/session', { mode: 'live' });
    assert.equal(switched.statusCode, 200);
    assert.equal(switched.json().mode, 'live');
    assert.equal((await req('GET', `/v1/messages/${liveMsg.id}`)).statusCode, 200);
    assert.equal((await req('GET', `/v1/messages/${testMsg.id}`)).statusCode, 404);
    assert.ok((await req('GET', '/v1/messages?limit=1000')).json().data.every((m: { mode: string }) => m.mode === 'live'));
    assert.equal((await req('PATCH', '/v1/session', { mode: 'staging' })).statusCode, 400);
  });

  test('sign-out ends the session and clears the cookie', async () => {
    const { req, session } = await person(env, 'viewer');
    const out = await req('DELETE', '/v1/session');
    assert.equal(out.statusCode, 204);
    assert.match(String(out.headers['set-cookie']), /sb_session=;.*Expires=Thu, 01 Jan 1970/);
    assert.equal((await req('GET', '/v1/session')).statusCode, 401);
    assert.equal((await req('GET', '/v1/messages')).statusCode, 401);
    assert.ok(session.cookie);
  });

  test('idle and absolute expiry', async () => {
    const { req } = await person(env, 'viewer');
    clock.advance(29 * 60_000);
    assert.equal((await req('GET', '/v1/messages')).statusCode, 200, 'used within the idle time');
    clock.advance(29 * 60_000);
    assert.equal((await req('GET', '/v1/messages')).statusCode, 200, 'the last request renewed it');
    clock.advance(31 * 60_000);
    assert.equal((await req('GET', '/v1/messages')).statusCode, 401, 'idle for more than 30 min');

    const other = await person(env, 'viewer');
    for (let i = 0; i < 26; i++) {
      clock.advance(28 * 60_000);
      const r = await other.req('GET', '/v1/session');
      if (i < 25) assert.equal(r.statusCode, 200, `request ${i}`);
      else assert.equal(r.statusCode, 401, 'past 12 h after sign-in');
    }
  });

  test('disabling a person or changing their password ends their sessions', async () => {
    const owner = await person(env, 'owner');
    const target = await person(env, 'sender');
    assert.equal((await target.req('GET', '/v1/messages')).statusCode, 200);
    assert.equal((await owner.req('PATCH', `/v1/users/${target.user.id}`, { disabled: true })).statusCode, 200);
    assert.equal((await target.req('GET', '/v1/messages')).statusCode, 401);
    assert.equal((await postSession(env, { email: target.user.email, password: PASSWORD })).statusCode, 401, 'a disabled person cannot sign in');
    assert.equal((await owner.req('PATCH', `/v1/users/${target.user.id}`, { disabled: false })).statusCode, 200);

    const again = await signIn(env, target.user.email);
    const mine = as(env, again);
    assert.equal((await mine('POST', '/v1/users/me/password', { current_password: 'wrong wrong wrong', new_password: 'a brand new passphrase' })).statusCode, 400);
    assert.equal((await mine('POST', '/v1/users/me/password', { current_password: PASSWORD, new_password: 'a brand new passphrase' })).statusCode, 204);
    assert.equal((await mine('GET', '/v1/session')).statusCode, 401);
    assert.equal((await postSession(env, { email: target.user.email, password: PASSWORD })).statusCode, 401);
    await signIn(env, target.user.email, { password: 'a brand new passphrase' });
  });

  test('TOTP: enrolment, then sign-in needs a code, once', async () => {
    const { user, req } = await person(env, 'admin');
    const begun = await req('POST', '/v1/users/me/totp');
    assert.equal(begun.statusCode, 200);
    const { secret, otpauth_url } = begun.json();
    assert.match(otpauth_url, /^otpauth:\/\/totp\/Switchboard:/);
    const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    assert.equal((await req('POST', '/v1/users/me/totp/verify', { code: '000000' === totp.generate({ timestamp: clock.now() }) ? '111111' : '000000' })).statusCode, 400);
    const verified = await req('POST', '/v1/users/me/totp/verify', { code: totp.generate({ timestamp: clock.now() }) });
    assert.equal(verified.statusCode, 200, verified.body);
    assert.equal(verified.json().totp_enabled, true);
    // What is stored, below the storage layer's sealing (src/security/sealed-columns.ts).
    const stored = await env.p.storage.db.withoutPlugins().selectFrom('users').select('totp_secret').where('id', '=', user.id).executeTakeFirstOrThrow();
    assert.ok(stored.totp_secret?.startsWith('v2:') && !stored.totp_secret.includes(secret), 'the secret is sealed');

    const without = await postSession(env, { email: user.email, password: PASSWORD });
    assert.equal(without.statusCode, 401);
    assert.deepEqual(without.json().error.details, { totp_required: true });
    const wrong = await postSession(env, { email: user.email, password: PASSWORD, totp: '123456' === totp.generate({ timestamp: clock.now() }) ? '654321' : '123456' });
    assert.equal(wrong.statusCode, 401);
    assert.deepEqual(wrong.json().error.details, { totp_required: true });
    clock.advance(30_000);
    const code = totp.generate({ timestamp: clock.now() });
    const s = await signIn(env, user.email, { totp: code });
    assert.equal(s.body.user.totp_enabled, true);
    const replay = await postSession(env, { email: user.email, password: PASSWORD, totp: code });
    assert.equal(replay.statusCode, 401, 'a code is good once');
  });

  test('a burst of parallel guesses at one email gets five tries, not one each', async () => {
    clock.advance(60 * 60_000);
    const user = await addUser(env, 'viewer');
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => postSession(env, { email: user.email, password: `parallel guess ${i}` })));
    const codes = answers.map((r) => r.statusCode).sort();
    assert.equal(codes.filter((c) => c === 401).length, 5, codes.join(','));
    assert.equal(codes.filter((c) => c === 429).length, 7);
    clock.advance(15 * 60_000 + 1000);
  });

  test('many failures from one address lock the address out, whichever emails they name', async () => {
    clock.advance(60 * 60_000); // past every earlier window
    const user = await addUser(env, 'viewer');
    for (let i = 0; i < 30; i++) assert.equal((await postSession(env, { email: `guess${i}@clinic.example`, password: 'wrong password' })).statusCode, 401);
    const locked = await postSession(env, { email: user.email, password: PASSWORD });
    assert.equal(locked.statusCode, 429, 'the right password does not get through a locked address');
    clock.advance(15 * 60_000 + 1000);
    assert.equal((await postSession(env, { email: user.email, password: PASSWORD })).statusCode, 200);
  });

  test('the users API: owner only, same-account only, and never without an owner', async () => {
    const owner = await person(env, 'owner');
    const admin = await person(env, 'admin');
    assert.equal((await admin.req('GET', '/v1/users')).statusCode, 403);
    assert.equal((await env.req('GET', '/v1/users')).statusCode, 403, 'an admin API key does not manage people');
    const created = await owner.req('POST', '/v1/users', { email: 'New.Nurse@Clinic.example', password: PASSWORD, role: 'agent' });
    assert.equal(created.statusCode, 201);
    assert.equal(created.json().created_by, owner.user.id);
    const dup = await owner.req('POST', '/v1/users', { email: 'new.nurse@clinic.example', password: PASSWORD, role: 'viewer' });
    assert.equal(dup.statusCode, 400, 'emails are unique per account, whatever their case');
    assert.equal((await owner.req('POST', '/v1/users', { email: 'short@clinic.example', password: 'short', role: 'viewer' })).statusCode, 400);
    assert.equal((await owner.req('POST', '/v1/users', { email: 'x@clinic.example', password: PASSWORD, role: 'superuser' })).statusCode, 400);
    const list = (await owner.req('GET', '/v1/users')).json().data;
    assert.ok(list.some((u: { email: string }) => u.email === 'New.Nurse@Clinic.example'));
    assert.ok(list.every((u: { password_hash?: string }) => u.password_hash === undefined));

    // Every owner but one demoted: the last one cannot be demoted, disabled or removed.
    for (const u of list.filter((u: { role: string; id: string }) => u.role === 'owner' && u.id !== owner.user.id)) {
      assert.equal((await owner.req('PATCH', `/v1/users/${u.id}`, { role: 'admin' })).statusCode, 200);
    }
    for (const [method, body] of [['PATCH', { role: 'admin' }], ['PATCH', { disabled: true }], ['DELETE', undefined]] as const) {
      const res = await owner.req(method, `/v1/users/${owner.user.id}`, body);
      assert.equal(res.statusCode, 400, `${method} ${JSON.stringify(body)}`);
      assert.equal(res.json().error.details.reason, 'last_owner');
    }
    assert.equal((await owner.req('DELETE', `/v1/users/${created.json().id}`)).statusCode, 200);
    assert.equal((await owner.req('DELETE', `/v1/users/${created.json().id}`)).statusCode, 404);
  });
});
