// /v1/webhooks as a user sees it: validation, secrets shown once, tenancy, scopes, rotation with an
// overlap window, status callbacks, 410, retries running out, retry and replay, metrics, OpenAPI.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { ManualClock } from '../src/clock.ts';
import { testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

async function settle(env: TestEnv, clock: ManualClock, steps = 10, stepMs = 1000) {
  for (let i = 0; i < steps; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
}

describe('webhook endpoints API', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({});
  });
  after(() => env.close());

  test('bad URLs and unknown event types are VALIDATION_ERROR', async () => {
    const cases: Array<[unknown, string]> = [
      [{ url: 'ftp://example.com/hook' }, 'url'],
      [{ url: 'https://user:pass@example.com/hook' }, 'url'],
      [{ url: `https://example.com/${'a'.repeat(2100)}` }, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: 'https://example.com/hook', events: ['message.sent', 'message.nope'] }, 'events[1]'],
      [{ events: [] }, 'url'],
    ];
    for (const [body, field] of cases) {
      const res = await env.req('POST', '/v1/webhooks', { body });
      assert.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 80));
      const err = res.json().error;
      assert.equal(err.code, 'VALIDATION_ERROR');
      assert.equal(err.details.field, field);
      assert.ok(err.request_id);
    }
  });

  test('the secret is shown once; CRUD works; other accounts and modes see NOT_FOUND', async () => {
    const created = await env.req('POST', '/v1/webhooks', { body: { url: 'https://example.com/hook', events: ['message.delivered'], description: 'orders' } });
    assert.equal(created.statusCode, 201, created.body);
    const ep = created.json();
    assert.match(ep.id, /^we_/);
    assert.match(ep.secret, /^whsec_/);
    assert.equal(ep.mode, 'test');
    assert.deepEqual(ep.events, ['message.delivered']);

    const got = (await env.req('GET', `/v1/webhooks/${ep.id}`)).json();
    assert.equal(got.secret, undefined);
    assert.equal(got.url, 'https://example.com/hook');
    const list = (await env.req('GET', '/v1/webhooks')).json();
    assert.ok(list.data.some((e: { id: string; secret?: string }) => e.id === ep.id && e.secret === undefined));

    const patched = await env.req('PATCH', `/v1/webhooks/${ep.id}`, { body: { events: [], url: 'https://example.org/new' } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().events, []);
    assert.equal(patched.json().url, 'https://example.org/new');
    const badPatch = await env.req('PATCH', `/v1/webhooks/${ep.id}`, { body: { url: 'https://a:b@example.org/' } });
    assert.equal(badPatch.json().error.code, 'VALIDATION_ERROR');

    const other = await env.p.accounts.create('Other');
    const otherKey = await env.key({ accountId: other.id });
    for (const token of [otherKey, env.liveKey]) {
      for (const [method, url, body] of [
        ['GET', `/v1/webhooks/${ep.id}`],
        ['PATCH', `/v1/webhooks/${ep.id}`, { enabled: false }],
        ['DELETE', `/v1/webhooks/${ep.id}`],
        ['GET', `/v1/webhooks/${ep.id}/deliveries`],
        ['POST', `/v1/webhooks/${ep.id}/rotate-secret`, {}],
        ['POST', `/v1/webhooks/${ep.id}/replay`, { since: '2020-01-01T00:00:00Z' }],
      ] as Array<[string, string, unknown?]>) {
        const res = await env.req(method as 'GET', url, { token, body });
        assert.equal(res.statusCode, 404, `${method} ${url}`);
        assert.equal(res.json().error.code, 'NOT_FOUND');
      }
      assert.ok(!(await env.req('GET', '/v1/webhooks', { token })).json().data.some((e: { id: string }) => e.id === ep.id));
    }

    const reader = await env.key({ scopes: ['messages:read'] });
    const forbidden = await env.req('GET', '/v1/webhooks', { token: reader });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().error.details.required_scope, 'webhooks:manage');

    const del = await env.req('DELETE', `/v1/webhooks/${ep.id}`);
    assert.equal(del.statusCode, 200);
    assert.equal((await env.req('GET', `/v1/webhooks/${ep.id}`)).statusCode, 404);
  });

  test('private addresses are refused unless SWITCHBOARD_ALLOW_PRIVATE_URLS', async () => {
    const strict = await testEnv({ config: { SWITCHBOARD_ALLOW_PRIVATE_URLS: false } });
    try {
      const res = await strict.req('POST', '/v1/webhooks', { body: { url: 'http://127.0.0.1:9/hook' } });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error.code, 'VALIDATION_ERROR');
    } finally {
      await strict.close();
    }
  });

  test('the routes are in /openapi.json', async () => {
    const doc = (await env.req('GET', '/openapi.json', { token: null })).json();
    for (const path of ['/v1/webhooks', '/v1/webhooks/{id}', '/v1/webhooks/{id}/deliveries', '/v1/webhooks/deliveries/{id}/retry', '/v1/webhooks/{id}/replay', '/v1/webhooks/{id}/rotate-secret']) {
      assert.ok(doc.paths[path], path);
    }
  });
});

describe('webhook behaviour on a manual clock', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  const rx = new Receiver();
  before(async () => {
    env = await testEnv({ clock, config: { SWITCHBOARD_WEBHOOK_SCHEDULE: '5s,30s', SWITCHBOARD_WEBHOOK_RETRY_WINDOW: '2m' } });
    await rx.start();
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  async function endpoint(url: string, events: string[] = []) {
    const ep = (await env.req('POST', '/v1/webhooks', { body: { url, events } })).json();
    return ep as { id: string; secret: string };
  }
  async function send(extra: Record<string, unknown> = {}) {
    const res = await env.req('POST', '/v1/messages', { body: { to: '+1 415 555 2671', body: 'hi', ...extra } });
    assert.equal(res.statusCode, 202, res.body);
    return res.json().id as string;
  }

  test('rotation: both secrets sign during the overlap, only the new one after it', async () => {
    const r = new Receiver();
    await r.start();
    try {
      const ep = await endpoint(r.url, ['message.queued']);
      const rotated = (await env.req('POST', `/v1/webhooks/${ep.id}/rotate-secret`, { body: { overlap_seconds: 3600 } })).json();
      assert.notEqual(rotated.secret, ep.secret);
      assert.ok(rotated.previous_secret_expires_at);
      await send();
      await settle(env, clock, 2);
      const first = r.received.at(-1)!;
      const raw = JSON.stringify(first.body);
      assert.equal(String(first.headers['webhook-signature']).split(' ').length, 2);
      for (const s of [ep.secret, rotated.secret]) new Webhook(s).verify(raw, first.headers as Record<string, string>);
      clock.advance(3601_000);
      await send();
      await settle(env, clock, 2);
      const later = r.received.at(-1)!;
      assert.equal(String(later.headers['webhook-signature']).split(' ').length, 1);
      new Webhook(rotated.secret).verify(JSON.stringify(later.body), later.headers as Record<string, string>);
      assert.throws(() => new Webhook(ep.secret).verify(JSON.stringify(later.body), later.headers as Record<string, string>));
    } finally {
      await r.stop();
    }
  });

  test("a message's status_callback gets its message.* events, signed with the account's callback secret", async () => {
    const cb = new Receiver();
    await cb.start();
    try {
      const secret = (await env.req('GET', '/v1/webhooks/callback-secret')).json();
      assert.match(secret.secret, /^whsec_/);
      cb.secrets = [secret.secret];
      const id = await send({ status_callback: `${cb.url}?m=1` });
      await settle(env, clock, 5);
      assert.deepEqual(cb.perMessage().order.get(id), ['message.queued', 'message.sent', 'message.delivered']);
      assert.equal(cb.badSignatures, 0);
      const all = (await env.req('GET', `/v1/webhooks/deliveries?message_id=${id}`)).json().data;
      assert.ok(all.some((d: { endpoint_id: string | null; status: string }) => d.endpoint_id === null && d.status === 'delivered'));
    } finally {
      await cb.stop();
    }
  });

  test('410 disables the endpoint; enabling it again sends what waited, and new events', async () => {
    const r = new Receiver();
    await r.start();
    try {
      const ep = await endpoint(r.url);
      r.secrets = [ep.secret];
      r.behaviour = 'gone';
      const id = await send();
      await settle(env, clock, 5);
      assert.equal(r.hits, 1, 'nothing more is sent after the 410');
      const disabled = (await env.req('GET', `/v1/webhooks/${ep.id}`)).json();
      assert.equal(disabled.enabled, false);
      assert.match(disabled.disabled_reason, /410/);
      const log = (await env.req('GET', `/v1/webhooks/${ep.id}/deliveries?message_id=${id}`)).json().data;
      const first = log.find((d: { event_type: string }) => d.event_type === 'message.queued');
      assert.equal(first.status, 'pending');
      assert.equal(first.attempts[0].response_status, 410);
      r.behaviour = 'ok';
      const enabled = await env.req('PATCH', `/v1/webhooks/${ep.id}`, { body: { enabled: true } });
      assert.equal(enabled.json().enabled, true);
      assert.equal(enabled.json().disabled_reason, null);
      await settle(env, clock, 2);
      // What was pending at the 410 goes now, in order; events while disabled were not queued for it.
      assert.equal(r.perMessage().order.get(id)?.[0], 'message.queued');
      const id2 = await send();
      await settle(env, clock, 5);
      assert.deepEqual(r.perMessage().order.get(id2), ['message.queued', 'message.sent', 'message.delivered']);
      assert.equal(r.badSignatures, 0);
    } finally {
      await r.stop();
    }
  });

  test('retries run out: failed, the later events still go; retry and replay send them again', async () => {
    const r = new Receiver();
    await r.start();
    try {
      const ep = await endpoint(r.url);
      r.secrets = [ep.secret];
      r.behaviour = 'error500';
      const since = new Date(clock.now()).toISOString();
      const id = await send();
      // Schedule 5 s, 30 s, window 2 min from each delivery's first attempt: attempts at 0, ~5 s,
      // ~35 s, ~65 s, ~95 s, then failed; the next event of the message starts only then.
      await settle(env, clock, 80, 5000);
      const log = (await env.req('GET', `/v1/webhooks/${ep.id}/deliveries?message_id=${id}`)).json().data;
      assert.equal(log.length, 3);
      for (const d of log) {
        assert.equal(d.status, 'failed', d.event_type);
        assert.ok(d.attempts.length >= 4, `${d.event_type}: ${d.attempts.length} attempts`);
        assert.equal(d.attempts[0].response_status, 500);
        assert.ok(d.attempts[0].response_body.length <= 1024);
        assert.equal(d.last_status_code, 500);
      }
      // Ordering held while failing: each event's first attempt came after the previous one failed.
      const firstAt = (t: string) => Date.parse(log.find((d: { event_type: string }) => d.event_type === t).attempts[0].at);
      const lastAt = (t: string) => Date.parse(log.find((d: { event_type: string }) => d.event_type === t).attempts.at(-1).at);
      assert.ok(firstAt('message.sent') >= lastAt('message.queued'));
      assert.ok(firstAt('message.delivered') >= lastAt('message.sent'));

      r.behaviour = 'ok';
      const queued = log.find((d: { event_type: string }) => d.event_type === 'message.queued');
      const retried = await env.req('POST', `/v1/webhooks/deliveries/${queued.id}/retry`);
      assert.equal(retried.statusCode, 200, retried.body);
      assert.equal(retried.json().status, 'pending');
      await settle(env, clock, 1);
      assert.deepEqual(r.perMessage().order.get(id), ['message.queued']);

      const replay = await env.req('POST', `/v1/webhooks/${ep.id}/replay`, { body: { since } });
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.json().replayed, 2);
      await settle(env, clock, 2);
      assert.deepEqual(r.perMessage().order.get(id), ['message.queued', 'message.sent', 'message.delivered']);
      assert.equal(r.badSignatures, 0);
      const other = await env.p.accounts.create('Stranger');
      const res = await env.req('POST', `/v1/webhooks/deliveries/${queued.id}/retry`, { token: await env.key({ accountId: other.id }) });
      assert.equal(res.statusCode, 404);
    } finally {
      await r.stop();
    }
  });

  test('metrics: deliveries by outcome and the outbox lag', async () => {
    const text = (await env.req('GET', '/metrics', { token: null })).body;
    assert.match(text, /switchboard_webhook_deliveries_total\{outcome="delivered"\} \d+/);
    assert.match(text, /switchboard_webhook_deliveries_total\{outcome="failed"\} \d+/);
    assert.match(text, /switchboard_webhook_attempts_total\{outcome="http_error"\} \d+/);
    assert.match(text, /switchboard_webhook_outbox_lag_seconds \d/);
    assert.match(text, /switchboard_webhook_delivery_lag_seconds \d/);
  });

  test('a restart loses nothing: pending deliveries and not-yet-fanned-out events go after it', async () => {
    const r = new Receiver();
    await r.start();
    try {
      const ep = await endpoint(r.url);
      r.secrets = [ep.secret];
      await r.stop();
      const id = await send();
      await settle(env, clock, 5);
      await env.restart({ clock });
      await r.start();
      clock.advance(60_000);
      await settle(env, clock, 3);
      assert.deepEqual(r.perMessage().order.get(id), ['message.queued', 'message.sent', 'message.delivered']);
      assert.equal(r.badSignatures, 0);
    } finally {
      await r.stop();
    }
  });
});
