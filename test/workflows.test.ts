// Workflows through the API: validation at create time, idempotent events, versioning while a
// run waits, scopes / account / mode separation, viewers without reply texts, webhook retries
// with backoff, and the guarantees of the engine (concurrent rounds and a crash between a send
// and its record never send twice).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { redactMessages } from '../src/security/retention.ts';
import { transaction } from '../src/storage/transactions.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

async function settle(env: TestEnv, clock: ManualClock, rounds = 8, stepMs = 500) {
  for (let i = 0; i < rounds; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
}

const simple = (overrides: Record<string, unknown> = {}) => ({
  name: 'Welcome',
  trigger: { event: 'user.signed_up' },
  steps: [
    { id: 'hello', type: 'send', body: 'Welcome, {{ contact.first_name | default: "friend" }}! Plan: {{ data.plan }}.' },
    { id: 'pause', type: 'wait', duration: '1h' },
    { id: 'check', type: 'branch', conditions: [{ if: 'data.plan == "pro"', goto: 'pro_tip' }], else: 'tag' },
    { id: 'pro_tip', type: 'send', body: 'Pro tip: reply HELP any time.' },
    { id: 'tag', type: 'update_contact', add_tags: ['onboarded'], custom_fields: { plan: '{{ data.plan }}' } },
    { id: 'stop', type: 'stop' },
  ],
  ...overrides,
});

describe('workflows API', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;

  before(async () => {
    env = await testEnv({ clock });
  });
  after(async () => env.close());

  test('validation: unknown step types, gotos to missing steps, bad CEL, bad durations, bad Liquid: VALIDATION_ERROR naming the step', async () => {
    const cases: Array<[string, Record<string, unknown>, RegExp, string]> = [
      ['unknown type', { id: 'x', type: 'teleport' }, /Unknown step type/, 'x'],
      ['missing goto', { id: 'x', type: 'branch', conditions: [{ if: 'true', goto: 'nowhere' }] }, /nowhere/, 'x'],
      ['bad CEL', { id: 'x', type: 'branch', conditions: [{ if: 'data.total >', goto: 'end' }] }, /not a valid CEL expression/, 'x'],
      ['unknown CEL variable', { id: 'x', type: 'branch', conditions: [{ if: 'secret_env == 1', goto: 'end' }] }, /CEL/, 'x'],
      ['bad duration', { id: 'x', type: 'wait', duration: 'soon' }, /duration/, 'x'],
      ['timeout required', { id: 'x', type: 'wait_for', reply: {} }, /timeout is required/, 'x'],
      ['delivery of a non-send step', { id: 'x', type: 'wait_for', delivery: 'x', timeout: '1h' }, /not a send step/, 'x'],
      ['bad Liquid', { id: 'x', type: 'send', body: 'Hi {{ name ' }, /Liquid/, 'x'],
      ['unknown field', { id: 'x', type: 'send', body: 'hi', colour: 'red' }, /Unknown field "colour"/, 'x'],
      ['webhook url', { id: 'x', type: 'webhook', url: 'ftp://example.com/' }, /http/, 'x'],
    ];
    for (const [what, step, message, stepId] of cases) {
      const res = await env.req('POST', '/v1/workflows', { body: { name: what, trigger: { event: 'a.b' }, steps: [{ id: 'first', type: 'send', body: 'hi' }, step] } });
      assert.equal(res.statusCode, 400, `${what}: ${res.body}`);
      const e = res.json().error;
      assert.equal(e.code, 'VALIDATION_ERROR', what);
      assert.match(e.message, message, what);
      assert.equal(e.details.step, stepId, what);
      assert.match(e.details.field, /^steps\[1\]/, what);
    }
    const dup = await env.req('POST', '/v1/workflows', { body: { name: 'd', trigger: { event: 'a.b' }, steps: [{ id: 'a', type: 'stop' }, { id: 'a', type: 'stop' }] } });
    assert.match(dup.json().error.message, /Two steps have the id/);
    const noTrigger = await env.req('POST', '/v1/workflows', { body: { name: 'd', steps: [{ id: 'a', type: 'stop' }] } });
    assert.equal(noTrigger.json().error.details.field, 'trigger');
    assert.equal((await env.req('GET', '/v1/workflows')).json().data.length, 0, 'nothing refused was stored');
  });

  test('an event runs send, wait, branch, update_contact, stop; the same idempotency_key answers the same and starts nothing', async () => {
    const created = await env.req('POST', '/v1/workflows', { body: simple() });
    assert.equal(created.statusCode, 201, created.body);
    const wf = created.json();
    assert.equal(wf.version, 1);
    const body = { name: 'user.signed_up', contact: { phone: sim(3), name: 'Lin Wu' }, data: { plan: 'pro' }, idempotency_key: 'signup-1' };
    const first = await env.req('POST', '/v1/events', { body });
    assert.equal(first.statusCode, 200, first.body);
    const again = await env.req('POST', '/v1/events', { body });
    assert.deepEqual(again.json().runs, first.json().runs);
    assert.equal(again.json().id, first.json().id);
    await settle(env, clock, 4);
    const runId = first.json().runs[0];
    let run = (await env.req('GET', `/v1/runs/${runId}`)).json();
    assert.equal(run.status, 'waiting');
    assert.equal(run.current_step, 'pause');
    clock.advance(3600_000);
    await settle(env, clock, 4);
    run = (await env.req('GET', `/v1/runs/${runId}`)).json();
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.steps.map((s: { id: string }) => s.id), ['hello', 'pause', 'check', 'pro_tip', 'tag', 'stop']);
    assert.match(run.steps[0].message_id, /^msg_/);
    const sent = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(sim(3))}`)).json().data;
    assert.equal(sent.length, 2, 'one run only, despite the repeated event');
    assert.ok(sent.some((m: { body: string }) => m.body === 'Welcome, Lin! Plan: pro.'));
    const contact = (await env.req('GET', `/v1/contacts/${run.contact_id}`)).json();
    assert.deepEqual(contact.tags, ['onboarded']);
    assert.equal(contact.custom_fields.plan, 'pro');
    const runs = (await env.req('GET', `/v1/workflows/${wf.id}/runs`)).json();
    assert.equal(runs.data.length, 1);
  });

  test('versioning: a change while a run waits; the run finishes on v1, new runs use v2; ?version reads the old one', async () => {
    const wf = (await env.req('POST', '/v1/workflows', { body: simple({ name: 'Versioned', trigger: { event: 'versioned.test' } }) })).json();
    const r1 = (await env.req('POST', '/v1/events', { body: { name: 'versioned.test', contact: { phone: sim(4) }, data: { plan: 'basic' } } })).json().runs[0];
    await settle(env, clock, 2);
    assert.equal((await env.req('GET', `/v1/runs/${r1}`)).json().status, 'waiting');
    const steps = simple().steps.map((s) => (s.id === 'hello' ? { ...s, body: 'Version two says hello.' } : s.id === 'tag' ? { ...s, add_tags: ['v2'] } : s));
    const patched = await env.req('PATCH', `/v1/workflows/${wf.id}`, { body: { steps } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().version, 2);
    const r2 = (await env.req('POST', '/v1/events', { body: { name: 'versioned.test', contact: { phone: sim(5) }, data: { plan: 'basic' } } })).json().runs[0];
    clock.advance(3600_000);
    await settle(env, clock, 4);
    clock.advance(3600_000);
    await settle(env, clock, 4);
    const run1 = (await env.req('GET', `/v1/runs/${r1}`)).json();
    const run2 = (await env.req('GET', `/v1/runs/${r2}`)).json();
    assert.equal(`${run1.status}/${run1.version}`, 'completed/1');
    assert.equal(`${run2.status}/${run2.version}`, 'completed/2');
    const contact1 = (await env.req('GET', `/v1/contacts/${run1.contact_id}`)).json();
    const contact2 = (await env.req('GET', `/v1/contacts/${run2.contact_id}`)).json();
    assert.deepEqual(contact1.tags, ['onboarded'], 'v1 run kept v1 steps after the change');
    assert.deepEqual(contact2.tags, ['v2']);
    const v1 = (await env.req('GET', `/v1/workflows/${wf.id}?version=1`)).json();
    assert.equal(v1.version, 2, 'the workflow is at version 2');
    assert.match(v1.steps[0].body, /Welcome/);
    // enabled alone changes no version; a disabled workflow starts nothing.
    const disabled = (await env.req('PATCH', `/v1/workflows/${wf.id}`, { body: { enabled: false } })).json();
    assert.equal(`${disabled.enabled}/${disabled.version}`, 'false/2');
    assert.deepEqual((await env.req('POST', '/v1/events', { body: { name: 'versioned.test', contact: { phone: sim(6) } } })).json().runs, []);
    const put = await env.req('PUT', `/v1/workflows/${wf.id}`, { body: simple({ name: 'Versioned', trigger: { event: 'versioned.test' } }) });
    assert.equal(put.json().version, 3);
    const del = await env.req('DELETE', `/v1/workflows/${wf.id}`);
    assert.equal(del.statusCode, 200);
    assert.equal((await env.req('GET', `/v1/workflows/${wf.id}`)).statusCode, 404);
    const audit = (await env.req('GET', '/v1/audit?limit=100')).json().data as Array<{ action: string }>;
    for (const a of ['workflow.created', 'workflow.updated', 'workflow.deleted']) assert.ok(audit.some((e) => e.action === a), `audited ${a}`);
  });

  test('scopes, accounts and modes: each sees only its own; events need events:send, definitions workflows:manage', async () => {
    const wf = (await env.req('POST', '/v1/workflows', { body: simple({ name: 'Mine', trigger: { event: 'mine.only' } }) })).json();
    const run = (await env.req('POST', '/v1/events', { body: { name: 'mine.only', contact: { phone: sim(7) }, data: { plan: 'x' } } })).json().runs[0];
    const eventsOnly = await env.key({ scopes: ['events:send'] });
    const forbidden = await env.req('POST', '/v1/workflows', { token: eventsOnly, body: simple() });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().error.details.required_scope, 'workflows:manage');
    const sendOnly = await env.key({ scopes: ['messages:send'] });
    assert.equal((await env.req('POST', '/v1/events', { token: sendOnly, body: { name: 'mine.only', contact: { phone: sim(7) } } })).statusCode, 403);
    assert.equal((await env.req('POST', '/v1/events', { token: eventsOnly, body: { name: 'nothing.listens', contact: { phone: sim(7) } } })).statusCode, 200);

    const other = await env.p.accounts.create('Other clinic');
    const otherKey = await env.key({ accountId: other.id });
    assert.equal((await env.req('GET', `/v1/workflows/${wf.id}`, { token: otherKey })).statusCode, 404);
    assert.equal((await env.req('GET', `/v1/runs/${run}`, { token: otherKey })).statusCode, 404);
    assert.equal((await env.req('GET', `/v1/workflows/${wf.id}/runs`, { token: otherKey })).statusCode, 404);
    assert.deepEqual((await env.req('POST', '/v1/events', { token: otherKey, body: { name: 'mine.only', contact: { phone: sim(7) } } })).json().runs, [], "another account's event starts none of ours");
    assert.equal((await env.req('GET', `/v1/workflows/${wf.id}`, { token: env.liveKey })).statusCode, 404, 'live mode does not see test workflows');
    assert.equal((await env.req('GET', `/v1/runs/${run}`, { token: env.liveKey })).statusCode, 404);
    const contactOfOther = await env.req('POST', '/v1/events', { token: otherKey, body: { name: 'x.y', contact_id: (await env.req('GET', `/v1/runs/${run}`)).json().contact_id } });
    assert.equal(contactOfOther.statusCode, 404);

    const bad = await env.req('POST', '/v1/events', { body: { name: 'no spaces allowed', contact: { phone: sim(7) } } });
    assert.equal(bad.json().error.details.field, 'name');
    const badPhone = await env.req('POST', '/v1/events', { body: { name: 'a.b', contact: { phone: '12' } } });
    assert.equal(badPhone.statusCode, 422);
    assert.equal((await env.req('POST', '/v1/events', { body: { name: 'a.b' } })).json().error.details.field, 'contact');
  });

  test('a viewer reads runs without the text of replies', async () => {
    const wf = (await env.req('POST', '/v1/workflows', { body: { name: 'Ask', trigger: { event: 'ask.me' }, steps: [{ id: 'ask', type: 'send', body: 'Anything to add?' }, { id: 'answer', type: 'wait_for', reply: {}, timeout: '1d' }] } })).json();
    const to = sim(8);
    const runId = (await env.req('POST', '/v1/events', { body: { name: 'ask.me', contact: { phone: to } } })).json().runs[0];
    await settle(env, clock, 4);
    const sent = (await env.req('GET', `/v1/messages?to=${encodeURIComponent(to)}`)).json().data[0];
    await env.req('POST', '/v1/simulator/inbound', { body: { from: to, to: sent.from, body: 'my secret answer' } });
    await settle(env, clock, 4);
    const full = (await env.req('GET', `/v1/runs/${runId}`)).json();
    assert.equal(full.status, 'completed');
    assert.equal(full.steps[1].result.body, 'my secret answer');
    const viewed = await env.p.workflows.service.run({ accountId: env.accountId, mode: 'test', scopes: ['messages:read'], kind: 'session', credentialId: 'sess_x', role: 'viewer', bodies: false }, runId);
    assert.equal(viewed.steps[1].result?.body, undefined, 'no body for a viewer');
    assert.ok(viewed.steps[1].result?.message_id);
    assert.equal((await env.req('GET', `/v1/workflows/${wf.id}/runs`)).json().data[0].steps[1].result.body, 'my secret answer');

    // Redacting the reply (retention, or the Twilio API) erases the run's copies of its text too.
    const replyId = full.steps[1].result.message_id as string;
    assert.equal(full.steps[1].message_id, replyId, 'the step names the reply it matched');
    await transaction(env.p.storage.db, (tx) => redactMessages(tx, [replyId], clock.now()));
    const redacted = (await env.req('GET', `/v1/runs/${runId}`)).json();
    assert.equal(redacted.steps[1].result.body, undefined);
    assert.equal(redacted.steps[1].result.body_redacted, true);
    const ctx = await env.p.storage.db.selectFrom('workflow_runs' as never).select('context' as never).where('id' as never, '=', runId as never).executeTakeFirstOrThrow() as { context: string };
    assert.doesNotMatch(ctx.context, /my secret answer/);
  });

  test('webhook step: retried with backoff while the receiver fails, signed, the same webhook-id each time; gives up after retries', async () => {
    const receiver = await new Receiver().start();
    receiver.secrets = [(await env.p.webhooks.service.callbackSecrets(env.accountId, 'test')).secret];
    try {
      const steps = [
        { id: 'notify', type: 'webhook', url: receiver.url, retries: 3, backoff: '10s', on_failure: 'fallback' },
        { id: 'ok', type: 'stop' },
        { id: 'fallback', type: 'send', body: 'We could not reach the system.' },
      ];
      await env.req('POST', '/v1/workflows', { body: { name: 'Hook', trigger: { event: 'hook.test' }, steps } });
      receiver.behaviour = 'error500';
      const runId = (await env.req('POST', '/v1/events', { body: { name: 'hook.test', contact: { phone: sim(9) }, data: { n: 1 } } })).json().runs[0];
      await env.p.runDue();
      assert.equal(receiver.hits, 1);
      clock.advance(9_000);
      await env.p.runDue();
      assert.equal(receiver.hits, 1, 'not before the backoff');
      clock.advance(1_000);
      await env.p.runDue();
      assert.equal(receiver.hits, 2, 'second attempt after 10 s');
      receiver.behaviour = 'ok';
      clock.advance(20_000);
      await env.p.runDue();
      assert.equal(receiver.hits, 3, 'third attempt after 20 s more');
      const run = (await env.req('GET', `/v1/runs/${runId}`)).json();
      assert.equal(run.status, 'completed', JSON.stringify(run));
      assert.equal(run.steps[0].result.attempts, 3);
      assert.equal(receiver.received.length, 1);
      assert.ok(receiver.received[0].verified);
      assert.equal(receiver.received[0].body.type, 'workflow.step');

      receiver.behaviour = 'error500';
      const failing = (await env.req('POST', '/v1/events', { body: { name: 'hook.test', contact: { phone: sim(9, '303') } } })).json().runs[0];
      for (let i = 0; i < 6; i++) {
        await env.p.runDue();
        clock.advance(60_000);
      }
      await settle(env, clock, 4);
      const gaveUp = (await env.req('GET', `/v1/runs/${failing}`)).json();
      assert.equal(receiver.hits, 3 + 4, 'first attempt + 3 retries');
      assert.deepEqual(gaveUp.steps.map((s: { id: string; status: string }) => `${s.id}:${s.status}`), ['notify:failed', 'fallback:completed']);
      assert.equal(gaveUp.status, 'completed');
    } finally {
      await receiver.stop();
    }
  });

  test('CLI: switchboard workflows create --file an example, on the same database as the server', async () => {
    const bin = fileURLToPath(new URL('../bin/switchboard.js', import.meta.url));
    const file = fileURLToPath(new URL('../examples/workflows/appointment-reminder.json', import.meta.url));
    const env2 = { ...process.env, DATABASE_URL: env.dbPath, SWITCHBOARD_ENCRYPTION_KEY: '7f'.repeat(32), LOG_LEVEL: 'silent' };
    const r = spawnSync(process.execPath, [bin, 'workflows', 'create', '--default', '--file', file, '--json'], { env: env2, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const w = JSON.parse(r.stdout);
    assert.equal(w.name, 'Appointment reminder');
    assert.equal((await env.req('GET', `/v1/workflows/${w.id}`)).json().trigger.event, 'appointment.booked');
  });

  test('workflow.completed and workflow.failed reach webhook endpoints', async () => {
    const receiver = await new Receiver().start();
    try {
      const ep = (await env.req('POST', '/v1/webhooks', { body: { url: receiver.url, events: ['workflow.completed', 'workflow.failed'] } })).json();
      receiver.secrets = [ep.secret];
      await env.req('POST', '/v1/workflows', { body: { name: 'Ends', trigger: { event: 'ends.well' }, steps: [{ id: 's', type: 'stop' }] } });
      await env.req('POST', '/v1/workflows', { body: { name: 'Fails', trigger: { event: 'ends.badly' }, steps: [{ id: 'x', type: 'send', template_id: 'tmpl_missing' }] } });
      await env.req('POST', '/v1/events', { body: { name: 'ends.well', contact: { phone: sim(1, '707') } } });
      await env.req('POST', '/v1/events', { body: { name: 'ends.badly', contact: { phone: sim(1, '707') } } });
      await settle(env, clock, 6);
      const types = receiver.received.map((r) => `${r.type}:${r.body.data.status}`).sort();
      assert.deepEqual(types, ['workflow.completed:completed', 'workflow.failed:failed']);
      await env.req('DELETE', `/v1/webhooks/${ep.id}`);
    } finally {
      await receiver.stop();
    }
  });
});

describe('engine guarantees', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(async () => env.close());

  test('concurrent engine rounds execute each step once', async () => {
    await env.req('POST', '/v1/workflows', { body: { name: 'Two texts', trigger: { event: 'race.me' }, steps: [{ id: 'a', type: 'send', body: 'one' }, { id: 'b', type: 'send', body: 'two' }] } });
    const areas = ['202', '212', '213', '303', '305', '312', '404', '415', '503', '512', '602', '617', '702', '713', '720', '801', '808', '818', '916', '919'];
    for (const area of areas) assert.equal((await env.req('POST', '/v1/events', { body: { name: 'race.me', contact: { phone: sim(3, area) } } })).json().runs.length, 1);
    await Promise.all([env.p.workflows.engine.runOnce(), env.p.workflows.engine.runOnce(), env.p.workflows.engine.runOnce()]);
    await Promise.all([env.p.workflows.engine.runOnce(), env.p.workflows.engine.runOnce()]);
    const runs = await env.p.storage.db.selectFrom('workflow_runs' as never).select(['status' as never, 'current_step' as never, 'due_at' as never]).execute();
    assert.deepEqual(runs.filter((r) => (r as { status: string }).status !== 'completed'), []);
    const rows = await env.p.storage.db.selectFrom('messages').select(['to_addr', 'body']).where('direction', '=', 'outbound').execute();
    assert.equal(rows.length, 40);
    assert.equal(new Set(rows.map((r) => `${r.to_addr}:${r.body}`)).size, 40);
  });

  test('a crash between a send and its record replays the same message, never a second one', async () => {
    await env.req('POST', '/v1/workflows', { body: { name: 'Crash', trigger: { event: 'crash.me' }, steps: [{ id: 'a', type: 'send', body: 'only once' }, { id: 'w', type: 'wait', duration: '1d' }] } });
    const to = sim(2, '808');
    const runId = (await env.req('POST', '/v1/events', { body: { name: 'crash.me', contact: { phone: to } } })).json().runs[0];
    await env.p.workflows.engine.runOnce();
    type WDB = import('kysely').Kysely<import('../src/workflows/workflow-tables.ts').WorkflowDB>;
    let db = env.p.storage.db as unknown as WDB;
    const step = await db.selectFrom('workflow_steps').selectAll().where('run_id', '=', runId).where('idx', '=', 1).executeTakeFirstOrThrow();
    assert.match(step.message_id!, /^msg_/);
    // Put the run back as it was just after the message was accepted, before the step was
    // recorded (a crash at that instant), with its lease expired.
    await db.deleteFrom('workflow_steps').where('run_id', '=', runId).where('idx', '=', 2).execute();
    await db.updateTable('workflow_steps').set({ status: 'running', finished_at: null, message_id: null, result: null }).where('run_id', '=', runId).where('idx', '=', 1).execute();
    await db.updateTable('workflow_runs').set({ status: 'running', current_step: 'a', step_index: 1, due_at: clock.now(), wait: null }).where('id', '=', runId).execute();
    await env.restart();
    db = env.p.storage.db as unknown as WDB;
    await env.p.workflows.engine.runOnce();
    const sent = await env.p.storage.db.selectFrom('messages').select('id').where('to_addr', '=', to).execute();
    assert.equal(sent.length, 1, 'the same idempotency key: no second message');
    const again = await db.selectFrom('workflow_steps').selectAll().where('run_id', '=', runId).where('idx', '=', 1).executeTakeFirstOrThrow();
    assert.equal(again.message_id, step.message_id);
    assert.equal((await env.req('GET', `/v1/runs/${runId}`)).json().current_step, 'w');
  });
});
