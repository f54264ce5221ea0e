// Retention and minimum necessary (issue 9): an account's bodies are removed N days after each
// message, by a durable sweep driven by runDue; the message, its statuses and its timeline stay.
// Webhook endpoints (and the account's status callbacks) can leave bodies out. Exports can mask
// phone numbers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

const DAY = 86_400_000;

describe('body retention', () => {
  const clock = new ManualClock(Date.now());
  const rx = new Receiver();
  let env: TestEnv;
  let withBodies = '';
  const ids: Record<string, string> = {};

  const settle = async (steps = 6) => {
    for (let i = 0; i < steps; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
  };
  const get = async (id: string) => (await env.req('GET', `/v1/messages/${id}`)).json();
  const events = async (id: string) => (await env.req('GET', `/v1/messages/${id}/events`)).json().data as Array<{ status: string; data: Record<string, unknown> }>;

  before(async () => {
    env = await testEnv({ clock });
    await rx.start();
    const full = (await env.req('POST', '/v1/webhooks', { body: { url: `${rx.url}?full=1` } })).json();
    withBodies = full.id;
    const lean = await env.req('POST', '/v1/webhooks', { body: { url: `${rx.url}?lean=1`, include_body: false } });
    assert.equal(lean.statusCode, 201, lean.body);
    assert.equal(lean.json().include_body, false);
    rx.secrets = [full.secret, lean.json().secret, (await env.req('GET', '/v1/webhooks/callback-secret')).json().secret];
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  test('settings: read, change, refuse nonsense', async () => {
    const first = await env.req('GET', '/v1/settings');
    assert.equal(first.statusCode, 200);
    assert.deepEqual(first.json(), { body_retention_days: null, mask_phone_numbers: false, status_callback_include_body: true });
    for (const bad of [{ body_retention_days: 0 }, { body_retention_days: 1.5 }, { body_retention_days: '30' }, { body_retention_days: 99999 }, { mask_phone_numbers: 'yes' }, { keep_forever: true }]) {
      const res = await env.req('PATCH', '/v1/settings', { body: bad });
      assert.equal(res.statusCode, 400, JSON.stringify(bad));
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    }
    const set = await env.req('PATCH', '/v1/settings', { body: { body_retention_days: 30, status_callback_include_body: false } });
    assert.equal(set.statusCode, 200, set.body);
    assert.equal(set.json().body_retention_days, 30);
    const viewer = await env.key({ scopes: ['messages:read'] });
    assert.equal((await env.req('PATCH', '/v1/settings', { token: viewer, body: { body_retention_days: 1 } })).statusCode, 403);
  });

  test('webhooks without bodies: an endpoint with include_body false, and status callbacks by the account default', async () => {
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'private words', status_callback: `${rx.url}?cb=1` } });
    ids.first = res.json().id;
    await settle();
    const mine = rx.received.filter((r) => r.messageId === ids.first);
    const full = mine.filter((r) => r.headers['x-switchboard-request-id'] && r.body.data.body === 'private words');
    const lean = mine.filter((r) => r.body.data.body === null);
    assert.ok(full.length >= 3, `with bodies: ${full.length}`);
    assert.ok(lean.length >= 6, `without bodies (lean endpoint + status callback): ${lean.length}`);
    assert.ok(mine.every((r) => r.verified), 'the payload without a body is what was signed');
    assert.ok(lean.every((r) => r.body.data.body_redacted === true && Array.isArray(r.body.data.media_urls) && r.body.data.media_urls.length === 0));
  });

  test('after N days the body, media and raw payloads are gone; the message, statuses and timeline stay', async () => {
    ids.mms = (await env.req('POST', '/v1/messages', { body: { to: sim(1), channel: 'mms', body: 'x-ray attached', media_urls: ['https://media.example.com/xray.png'] } })).json().id;
    ids.inbound = (await env.req('POST', '/v1/simulator/inbound', { body: { from: sim(2), body: 'my results please' } })).json().id;
    // Scheduled 34 days ahead: still on its way (not final) when its 30 days are up.
    const stuck = await env.req('POST', '/v1/messages', { body: { to: sim(0), body: 'waiting words', send_at: new Date(clock.now() + 34 * DAY).toISOString() } });
    assert.equal(stuck.json().status, 'scheduled', stuck.body);
    ids.stuck = stuck.json().id;
    await settle();
    const before = { first: await events(ids.first), inbound: await events(ids.inbound) };
    const statuses = await Promise.all([ids.first, ids.mms, ids.inbound].map(async (id) => (await get(id)).status));
    assert.ok(before.inbound[0].data.raw !== undefined, JSON.stringify(before.inbound));
    clock.advance(10 * DAY);
    ids.recent = (await env.req('POST', '/v1/messages', { body: { to: sim(3), body: 'recent words' } })).json().id;
    await settle();
    assert.equal((await get(ids.first)).body, 'private words', 'not yet: 10 days of 30');

    clock.advance(21 * DAY);
    await settle(3);
    for (const [i, id] of [ids.first, ids.mms, ids.inbound].entries()) {
      const m = await get(id);
      assert.equal(m.body, null, id);
      assert.deepEqual(m.media_urls, []);
      assert.equal(m.body_redacted, true);
      assert.equal(m.status, statuses[i], 'the status stays');
    }
    const after = { first: await events(ids.first), inbound: await events(ids.inbound) };
    assert.deepEqual(after.first.map((e) => e.status), before.first.map((e) => e.status), 'the timeline keeps every status');
    assert.ok(after.inbound.every((e) => e.data.raw === undefined && e.data.redacted === true), JSON.stringify(after.inbound));
    assert.equal((await get(ids.recent)).body, 'recent words', 'a message younger than 30 days keeps its body');
    assert.equal((await get(ids.stuck)).body, 'waiting words', 'a message still on its way keeps its body');
    // The stored webhook payloads lost the body too: a replay sends none.
    const outbox = await env.p.storage.db.selectFrom('outbox').select(['payload']).where('message_id', '=', ids.first).execute();
    assert.ok(outbox.length >= 3, `outbox rows ${outbox.length}`);
    assert.ok(outbox.every((o) => JSON.parse(o.payload).data.body === null), JSON.stringify(outbox));
    const seen = rx.received.length;
    const replay = await env.req('POST', `/v1/webhooks/${withBodies}/replay`, { body: { since: new Date(clock.now() - 40 * DAY).toISOString(), status: 'all' } });
    assert.equal(replay.statusCode, 200, replay.body);
    await settle(3);
    const replayed = rx.received.slice(seen).filter((r) => r.messageId === ids.first);
    assert.ok(replayed.length >= 3, `replayed ${replayed.length}`);
    assert.ok(replayed.every((r) => r.body.data.body === null && r.verified), JSON.stringify(replayed.map((r) => [r.body.data.body, r.verified])));
  });

  test('a message that was still on its way is redacted once it is final', async () => {
    assert.equal((await env.p.storage.db.selectFrom('retention_deferred').selectAll().execute()).length, 1, 'parked');
    clock.advance(3.5 * DAY); // its send time comes; it is sent and delivered
    await settle(6);
    const m = await get(ids.stuck);
    assert.equal(m.status, 'delivered');
    assert.equal(m.body, null);
    assert.equal(m.body_redacted, true);
    const parked = await env.p.storage.db.selectFrom('retention_deferred').selectAll().execute();
    assert.equal(parked.length, 0);
  });

  test('the sweep is durable and bounded: it resumes from its cursor after a restart', async () => {
    for (let i = 0; i < 12; i++) assert.equal((await env.req('POST', '/v1/messages', { body: { to: sim(0), body: `bulk ${i}` } })).statusCode, 202);
    await settle();
    clock.advance(31 * DAY);
    await env.restart({ clock });
    (env.p.retention as unknown as { opts: { batch: number } }).opts.batch = 5;
    assert.equal(await env.p.retention.runOnce(), 5, 'one bounded batch per account and mode');
    await env.restart({ clock });
    await settle(4);
    const list = (await env.req('GET', '/v1/messages?limit=200')).json().data as Array<{ body: string | null; body_redacted?: boolean }>;
    assert.ok(list.every((m) => m.body === null && m.body_redacted === true), JSON.stringify(list.filter((m) => m.body !== null)));
  });

  test('exports mask phone numbers when the account asks', async () => {
    await env.req('POST', '/v1/consent', { body: { phone: sim(7), status: 'opted_in', purpose: 'marketing', source: 'web_form', evidence: { note: `called from ${sim(8)}` } } });
    const plain = (await env.req('GET', '/v1/consent/export')).body;
    assert.ok(plain.includes(sim(7)));
    await env.req('PATCH', '/v1/settings', { body: { mask_phone_numbers: true } });
    const masked = (await env.req('GET', '/v1/consent/export')).body;
    assert.ok(!masked.includes(sim(7)) && !masked.includes(sim(8)), masked);
    assert.ok(masked.includes(`${sim(7).slice(0, -4)}****`));
  });
});
