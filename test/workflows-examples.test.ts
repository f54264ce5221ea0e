// The guide's two example workflows, loaded from examples/workflows/, end to end on the simulator:
// a manual clock (no real waiting), receivers on 127.0.0.1 standing in for the help desk and the
// booking system, and a restart of the platform in the middle of each run that resumes it
// without repeating a step.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

const example = (name: string) => JSON.parse(readFileSync(new URL(`../examples/workflows/${name}`, import.meta.url), 'utf8')) as { steps: Array<Record<string, unknown>> };

/** The example with its webhook steps pointed at a local receiver. */
function withReceiver(def: { steps: Array<Record<string, unknown>> }, stepId: string, url: string) {
  const step = def.steps.find((s) => s.id === stepId)!;
  assert.ok(step, `the example has a ${stepId} step`);
  step.url = url;
  return def;
}

async function settle(env: TestEnv, clock: ManualClock, rounds = 12, stepMs = 500) {
  for (let i = 0; i < rounds; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
}

async function messagesTo(env: TestEnv, to: string) {
  const res = await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}&direction=outbound&limit=100`);
  return (res.json().data as Array<{ id: string; body: string; channel: string; status: string; from: string; metadata: Record<string, string> }>).reverse();
}

async function run(env: TestEnv, id: string) {
  const res = await env.req('GET', `/v1/runs/${id}`);
  assert.equal(res.statusCode, 200, res.body);
  return res.json() as { status: string; current_step: string | null; version: number; steps: Array<{ id: string; type: string; status: string; message_id?: string; result?: Record<string, unknown> }> };
}

describe('example: order updates', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  const helpDesk = new Receiver();
  let workflowId: string;

  before(async () => {
    env = await testEnv({ clock });
    await helpDesk.start();
    helpDesk.secrets = [(await env.p.webhooks.service.callbackSecrets(env.accountId, 'test')).secret];
    const res = await env.req('POST', '/v1/workflows', { body: withReceiver(example('order-updates.json'), 'to_help_desk', helpDesk.url) });
    assert.equal(res.statusCode, 201, res.body);
    workflowId = res.json().id;
  });
  after(async () => {
    await helpDesk.stop();
    await env.close();
  });

  test('confirmation; a reply goes to the help desk; restart; shipped with tracking link; delivered: completed, nothing repeated', async () => {
    const to = sim(1);
    const placed = await env.req('POST', '/v1/events', { body: { name: 'order.placed', contact: { phone: to, name: 'Ada Lovelace' }, data: { order_id: 'A-100', order_total: 899 }, idempotency_key: 'order-A-100-placed' } });
    assert.equal(placed.statusCode, 200, placed.body);
    const [runId] = placed.json().runs as string[];
    assert.match(runId, /^run_/);
    await settle(env, clock);
    let sent = await messagesTo(env, to);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].body, "Thanks Ada! Order A-100 is confirmed. We'll text you when it ships.");
    assert.equal(sent[0].metadata.workflow_run_id, runId);
    let r = await run(env, runId);
    assert.equal(r.status, 'waiting');
    assert.equal(r.current_step, 'wait_shipped');

    const inbound = await env.req('POST', '/v1/simulator/inbound', { body: { from: to, to: sent[0].from, body: 'Where is my parcel?' } });
    assert.equal(inbound.statusCode, 201, inbound.body);
    await settle(env, clock);
    assert.equal(helpDesk.received.length, 1, 'the reply reached the help desk once');
    const hook = helpDesk.received[0];
    assert.ok(hook.verified, 'signed with the account callback secret (Standard Webhooks)');
    assert.equal((hook.body.data.steps as Record<string, { body: string }>).wait_shipped.body, 'Where is my parcel?');
    assert.equal((hook.body.data.contact as { phone: string }).phone, to);
    r = await run(env, runId);
    assert.equal(r.status, 'waiting', 'back to waiting for the shipment');
    assert.deepEqual(r.steps.map((s) => `${s.id}:${s.status}`), ['confirmation:completed', 'wait_shipped:completed', 'to_help_desk:completed', 'wait_shipped:waiting']);

    await env.restart();

    // Another order's shipment does not move this run (correlated by order_id).
    const other = await env.req('POST', '/v1/events', { body: { name: 'order.shipped', contact: { phone: to }, data: { order_id: 'B-999', tracking_url: 'https://track.example.com/B-999' } } });
    assert.deepEqual(other.json().resumed, []);
    const shipped = await env.req('POST', '/v1/events', { body: { name: 'order.shipped', contact: { phone: to }, data: { order_id: 'A-100', tracking_url: 'https://track.example.com/A-100' } } });
    assert.deepEqual(shipped.json().resumed, [runId]);
    await settle(env, clock);
    sent = await messagesTo(env, to);
    assert.deepEqual(
      sent.map((m) => m.body),
      ["Thanks Ada! Order A-100 is confirmed. We'll text you when it ships.", 'Good news: order A-100 has shipped. Track it here: https://track.example.com/A-100'],
      'each send step once, across the restart',
    );
    r = await run(env, runId);
    assert.equal(r.status, 'completed');
    assert.deepEqual(
      r.steps.map((s) => `${s.id}:${s.status}`),
      ['confirmation:completed', 'wait_shipped:completed', 'to_help_desk:completed', 'wait_shipped:completed', 'shipped_sms:completed', 'wait_delivery:completed', 'high_value_undelivered:completed'],
    );
    assert.equal(r.steps[5].result?.outcome, 'delivered');
    assert.equal(helpDesk.received.length, 1);
  });

  test('a high-value order whose shipping SMS is undelivered gets a ringless voicemail; a small one does not', async () => {
    const big = sim(10, '303');
    const small = sim(10, '404');
    const runs: string[] = [];
    for (const [phone, total, id] of [[big, 650.5, 'C-1'], [small, 120, 'C-2']] as const) {
      const res = await env.req('POST', '/v1/events', { body: { name: 'order.placed', contact: { phone }, data: { order_id: id, order_total: total } } });
      runs.push(res.json().runs[0]);
    }
    await settle(env, clock);
    for (const [phone, id] of [[big, 'C-1'], [small, 'C-2']] as const) {
      await env.req('POST', '/v1/events', { body: { name: 'order.shipped', contact: { phone }, data: { order_id: id, tracking_url: `https://track.example.com/${id}` } } });
    }
    await settle(env, clock, 20);
    const bigSent = await messagesTo(env, big);
    assert.deepEqual(bigSent.map((m) => m.channel), ['sms', 'sms', 'rvm']);
    assert.match(bigSent[2].body, /order C-1/);
    assert.deepEqual((await messagesTo(env, small)).map((m) => m.channel), ['sms', 'sms']);
    const r = await run(env, runs[0]);
    assert.equal(r.status, 'completed');
    assert.equal(r.steps.find((s) => s.id === 'wait_delivery')?.result?.outcome, 'undelivered');
    assert.deepEqual(r.steps.at(-1)?.id, 'voicemail');
    const list = await env.req('GET', `/v1/workflows/${workflowId}/runs?status=completed`);
    assert.ok(list.json().data.length >= 3);
  });
});

describe('example: appointment reminder', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  const booking = new Receiver();
  const startsAt = '2026-01-08T17:30:00Z';

  before(async () => {
    env = await testEnv({ clock });
    await booking.start();
    booking.secrets = [(await env.p.webhooks.service.callbackSecrets(env.accountId, 'test')).secret];
    const res = await env.req('POST', '/v1/workflows', { body: withReceiver(example('appointment-reminder.json'), 'confirm_booking', booking.url) });
    assert.equal(res.statusCode, 201, res.body);
  });
  after(async () => {
    await booking.stop();
    await env.close();
  });

  const book = async (phone: string, appointmentId: string) => {
    const res = await env.req('POST', '/v1/events', {
      body: { name: 'appointment.booked', contact: { phone, name: 'Grace Hopper' }, data: { appointment_id: appointmentId, starts_at: startsAt, staff_name: 'Dr. Rivera', time_zone: 'America/New_York' } },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().runs[0] as string;
  };

  test('waits until 24 h before; reminder; restart; reply C confirms at the booking system; no call', async () => {
    const to = sim(17); // delivered, then the handset replies C
    const runId = await book(to, 'appt-1');
    await settle(env, clock, 3);
    assert.deepEqual((await messagesTo(env, to)).map((m) => m.body), [], 'nothing before the day before');
    const r0 = await run(env, runId);
    assert.equal(r0.status, 'waiting');
    assert.equal(r0.current_step, 'until_day_before');

    await env.restart();
    clock.set(Date.parse(startsAt) - 24 * 3600_000 - 10_000);
    await settle(env, clock, 2);
    assert.equal((await messagesTo(env, to)).length, 0, 'still a few seconds early');
    clock.set(Date.parse(startsAt) - 24 * 3600_000);
    await settle(env, clock, 12);
    const sent = await messagesTo(env, to);
    assert.equal(sent.length, 1);
    assert.equal(sent[0].body, 'Hi Grace, a reminder of your appointment on Thursday January 8 at 12:30 PM with Dr. Rivera. Reply C to confirm.');
    const r = await run(env, runId);
    assert.equal(r.status, 'completed', JSON.stringify(r));
    assert.deepEqual(r.steps.map((s) => `${s.id}:${s.status}`), ['until_day_before:completed', 'reminder:completed', 'wait_confirm:completed', 'confirm_booking:completed', 'done:completed']);
    assert.equal(booking.received.length, 1);
    assert.equal((booking.received[0].body.data.data as { appointment_id: string }).appointment_id, 'appt-1');
    assert.ok(booking.received[0].verified);
  });

  test('no reply within 4 h: a voice call', async () => {
    const to = sim(2, '505');
    const runId = await book(to, 'appt-2'); // the clock is already past the reminder time
    await settle(env, clock, 4);
    assert.equal((await run(env, runId)).current_step, 'wait_confirm');
    clock.advance(4 * 3600_000);
    await settle(env, clock, 6);
    const sent = await messagesTo(env, to);
    assert.deepEqual(sent.map((m) => m.channel), ['sms', 'voice']);
    const r = await run(env, runId);
    assert.equal(r.status, 'completed');
    assert.equal(r.steps.find((s) => s.id === 'wait_confirm')?.status, 'timed_out');
  });

  test('STOP at any point ends the run (canceled), and nothing more is sent', async () => {
    const to = sim(16, '606'); // delivered, then the handset replies STOP
    const runId = await book(to, 'appt-3'); // the clock is already past the reminder time
    await settle(env, clock, 8);
    const r = await run(env, runId);
    assert.equal(r.status, 'canceled', JSON.stringify(r));
    clock.advance(5 * 3600_000);
    await settle(env, clock, 4);
    // The one reply after the reminder is the opt-out confirmation, which is no step of the run.
    assert.deepEqual((await messagesTo(env, to)).map((m) => m.metadata?.workflow_step ?? 'opt-out confirmation'), ['reminder', 'opt-out confirmation'], 'no call after the STOP');

    // Opted out before the run reaches its send: the run is canceled at that step.
    const later = await book(to, 'appt-4');
    await settle(env, clock, 4);
    const r2 = await run(env, later);
    assert.equal(r2.status, 'canceled');
  });
});
