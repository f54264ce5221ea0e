// Every simulator number (CONTRACT §6) ends in the status and error class that §5 says, with
// the follow-up actions: review items, suppression, inbound replies. The clock is manual: the
// test moves it instead of waiting.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('simulator numbers end where CONTRACT §5/§6 say', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  async function sendAndSettle(yy: number, extra: Record<string, unknown> = {}, area = '202') {
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(yy, area), body: `number ${yy}`, ...extra } });
    assert.equal(res.statusCode, 202, res.body);
    const id = res.json().id as string;
    for (let i = 0; i < 30; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    await env.p.runDue();
    return (await env.req('GET', `/v1/messages/${id}`)).json();
  }

  const expectations: Array<[number, string, string | null]> = [
    [0, 'delivered', null],
    [9, 'delivered', null],
    [10, 'undelivered', 'UNREACHABLE'],
    [11, 'undelivered', 'FILTERED'],
    [12, 'delivered', null],
    [13, 'failed', 'UNKNOWN_ERROR'],
    [14, 'failed', 'OPTED_OUT'],
    [15, 'failed', 'INVALID_NUMBER'],
    [16, 'delivered', null],
    [17, 'delivered', null],
    [19, 'delivered', null],
  ];
  for (const [yy, status, cls] of expectations) {
    test(`+1 202 555 01${String(yy).padStart(2, '0')} ends ${status}${cls ? ` with ${cls}` : ''}`, async () => {
      const m = await sendAndSettle(yy);
      assert.equal(m.status, status);
      assert.equal(m.error?.class ?? null, cls);
      if (status === 'delivered') assert.match(m.provider_message_id, /^sim_/);
    });
  }

  test('18: accepted, no receipt, stays sent until its validity runs out, then expired', async () => {
    const res = await env.req('POST', '/v1/messages', { body: { to: sim(18), body: 'no receipt', validity_period: 3600 } });
    const id = res.json().id;
    await env.p.runDue();
    clock.advance(60_000);
    await env.p.runDue();
    assert.equal((await env.req('GET', `/v1/messages/${id}`)).json().status, 'sent');
    clock.advance(3600_000);
    await env.p.runDue();
    const m = (await env.req('GET', `/v1/messages/${id}`)).json();
    assert.equal(m.status, 'expired');
    const events = (await env.req('GET', `/v1/messages/${id}/events`)).json().data;
    assert.deepEqual(
      events.map((e: { status: string }) => e.status),
      ['queued', 'sending', 'sent', 'expired'],
    );
  });

  test('12: two RATE_LIMITED refusals are retried with backoff, then delivered on the third attempt', async () => {
    const m = await sendAndSettle(12);
    assert.equal(m.attempts, 3);
    const events = (await env.req('GET', `/v1/messages/${m.id}/events`)).json().data;
    const retries = events.filter((e: { status: string; data: { error?: { class: string } } }) => e.status === 'queued' && e.data.error?.class === 'RATE_LIMITED');
    assert.equal(retries.length, 2);
  });

  test('13: UNKNOWN_ERROR is retried at most twice, then failed and put in the review queue', async () => {
    const m = await sendAndSettle(13);
    assert.equal(m.attempts, 3);
    const review = (await env.req('GET', '/v1/review')).json().data;
    const item = review.find((r: { message_id: string }) => r.message_id === m.id);
    assert.ok(item, 'a review item for the message');
    assert.equal(item.error_class, 'UNKNOWN_ERROR');
    const resolved = await env.req('POST', `/v1/review/${item.id}/resolve`, { body: { resolution: 'dismissed', note: 'checked' } });
    assert.equal(resolved.statusCode, 200);
    assert.equal(resolved.json().status, 'resolved');
    const open = (await env.req('GET', '/v1/review')).json().data;
    assert.ok(!open.some((r: { id: string }) => r.id === item.id));
  });

  test('11: FILTERED by the carrier goes to the review queue', async () => {
    const m = await sendAndSettle(11);
    const review = (await env.req('GET', '/v1/review')).json().data;
    assert.ok(review.some((r: { message_id: string; error_class: string }) => r.message_id === m.id && r.error_class === 'FILTERED'));
  });

  test('14 and 15: the number is suppressed afterwards, on every channel, without a carrier submit', async () => {
    await sendAndSettle(14, {}, '312');
    for (const channel of ['sms', 'voice', 'rvm']) {
      const again = await env.req('POST', '/v1/messages', { body: { to: sim(14, '312'), body: 'again', channel } });
      assert.equal(again.statusCode, 422);
      assert.equal(again.json().error.code, 'OPTED_OUT');
    }
    const consent = (await env.req('GET', `/v1/consent?phone=${encodeURIComponent(sim(14, '312'))}`)).json();
    assert.equal(consent.suppressed, true);
    assert.equal(consent.data.at(-1).source, 'carrier');

    await sendAndSettle(15, {}, '312');
    const dead = await env.req('POST', '/v1/messages', { body: { to: sim(15, '312'), body: 'again' } });
    assert.equal(dead.statusCode, 422);
    assert.equal(dead.json().error.code, 'INVALID_NUMBER');
  });

  test('16: delivered, then the STOP reply arrives as an inbound message and opts the number out', async () => {
    const m = await sendAndSettle(16, {}, '312');
    assert.equal(m.status, 'delivered');
    const inbound = (await env.req('GET', `/v1/messages?direction=inbound&from=${encodeURIComponent(sim(16, '312'))}`)).json().data;
    assert.equal(inbound.length, 1);
    assert.equal(inbound[0].body, 'STOP');
    assert.equal(inbound[0].status, 'received');
    assert.equal(inbound[0].to, m.from);
    const again = await env.req('POST', '/v1/messages', { body: { to: sim(16, '312'), body: 'again' } });
    assert.equal(again.json().error.code, 'OPTED_OUT');
  });

  test('17: delivered, then the handset replies C', async () => {
    await sendAndSettle(17);
    const inbound = (await env.req('GET', `/v1/messages?direction=inbound&from=${encodeURIComponent(sim(17))}`)).json().data;
    assert.equal(inbound[0]?.body, 'C');
  });

  test('voice and rvm follow the same table', async () => {
    const voice = await sendAndSettle(0, { channel: 'voice' });
    assert.equal(voice.status, 'delivered');
    const rvm = await sendAndSettle(10, { channel: 'rvm' });
    assert.equal(rvm.status, 'undelivered');
    assert.equal(rvm.error.class, 'UNREACHABLE');
  });
});
