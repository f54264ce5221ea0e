// Campaigns (issue 7, CONTRACT §11): lists and segments, CSV audiences, the runner's release
// through the same checks as any message, pacing, send windows, pause/resume/cancel, live stats,
// per-recipient results, tracked links and the campaign.completed webhook. The clock is manual:
// the tests move it instead of waiting.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { freshDatabase, sim, testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

async function settle(env: TestEnv, clock: ManualClock, steps = 10, stepMs = 1000) {
  for (let i = 0; i < steps; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
}

const csvOf = (rows: string[][]) => rows.map((r) => r.join(',')).join('\n');

describe('campaigns', () => {
  // 15:00 UTC: 10:00 in New York (area code 202).
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  const rx = new Receiver();
  before(async () => {
    env = await testEnv({ clock, config: { SWITCHBOARD_PUBLIC_URL: 'https://sb.example.com' } });
    await rx.start();
    const ep = (await env.req('POST', '/v1/webhooks', { body: { url: rx.url, events: ['campaign.completed'] } })).json();
    rx.secrets = [ep.secret];
  });
  after(async () => {
    await env.close();
    await rx.stop();
  });

  const create = async (body: Record<string, unknown>) => {
    const res = await env.req('POST', '/v1/campaigns', { body: { name: 'c', ...body } });
    assert.equal(res.statusCode, 201, res.body);
    return res.json();
  };
  const action = async (id: string, what: string) => {
    const res = await env.req('POST', `/v1/campaigns/${id}/${what}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const get = async (id: string) => (await env.req('GET', `/v1/campaigns/${id}`)).json();
  const countMessages = async (campaignId: string) => {
    const rows = await env.p.storage.db.selectFrom('campaign_recipients').innerJoin('messages', 'messages.id', 'campaign_recipients.message_id').select(['messages.status', 'messages.to_addr']).where('campaign_id', '=', campaignId).execute();
    return rows;
  };

  test('a CSV campaign with a template: every recipient checked like a single message; stats, results, webhook', async () => {
    const t = (await env.req('POST', '/v1/templates', { body: { name: 'promo', body: 'Hi {{ name }}, see https://shop.example.com/sale', variables: ['name'] } })).json();
    const optedOut = sim(3);
    await env.req('POST', '/v1/consent', { body: { phone: optedOut, status: 'opted_out' } });
    const rows = [['phone', 'name'], [sim(0), 'Ada'], [sim(1), 'Bo'], [optedOut, 'Cy'], ['12', 'Di'], [sim(10), 'Ed'], [sim(13), 'Flo'], [sim(16), 'Gus'], [sim(0), 'Ada again'], [sim(2), '']];
    const c = await create({ audience: { csv: csvOf(rows) }, template_id: t.id });
    assert.equal(c.status, 'draft');
    assert.equal(c.template_version, 1);
    assert.equal(c.stats.total, 8, 'the duplicate row is one recipient');
    assert.equal(c.validity_period, 7200, 'the guide’s 2-hour rule is the default');
    // Nothing moves while it is a draft.
    await env.p.runDue();
    assert.equal((await countMessages(c.id)).length, 0);

    await action(c.id, 'start');
    await settle(env, clock);
    const done = await get(c.id);
    assert.equal(done.status, 'completed', JSON.stringify(done.stats));
    assert.equal(done.stats.total, 8);
    assert.equal(done.stats.suppressed, 2, 'opted out and invalid number');
    assert.equal(done.stats.failed_by_class.VALIDATION_ERROR, 1, 'the empty name is refused, not sent as "Hi ,"');
    assert.equal(done.stats.failed_by_class.UNREACHABLE, 1);
    assert.equal(done.stats.failed_by_class.UNKNOWN_ERROR, 1);
    assert.equal(done.stats.delivered, 3);
    assert.equal(done.stats.sent, 4);
    assert.equal(done.stats.queued, 0);
    assert.equal(done.stats.replies, 1, 'the handset that replied STOP');

    const msgs = await countMessages(c.id);
    assert.equal(msgs.length, 5);
    assert.ok(!msgs.some((m) => m.to_addr === optedOut), 'nothing was sent to the opted-out number');

    const results = (await env.req('GET', `/v1/campaigns/${c.id}/recipients?limit=5`)).json();
    assert.equal(results.data.length, 5);
    assert.equal(results.data[0].status, 'delivered');
    assert.equal(results.data[2].status, 'suppressed');
    assert.equal(results.data[2].error.code, 'OPTED_OUT');
    assert.equal(results.data[3].error.code, 'INVALID_NUMBER');
    const rest = (await env.req('GET', `/v1/campaigns/${c.id}/recipients?cursor=${results.next_cursor}`)).json();
    assert.equal(rest.data.length, 3);
    assert.equal(rest.next_cursor, null);

    // The message records its campaign and template; its link is a tracked short link.
    const first = (await env.req('GET', `/v1/messages/${results.data[0].message_id}`)).json();
    assert.equal(first.metadata.campaign_id, c.id);
    assert.equal(first.metadata.template_id, t.id);
    const short = /https:\/\/sb\.example\.com\/l\/(\S+)/.exec(first.body);
    assert.ok(short, first.body);
    assert.match(first.body, /^Hi Ada, see https:\/\/sb\.example\.com\/l\//);
    const click = await env.req('GET', `/l/${short[1]}`, { token: null, headers: { 'user-agent': 'phone' } });
    assert.equal(click.statusCode, 302);
    assert.equal(click.headers.location, 'https://shop.example.com/sale');
    assert.equal((await env.req('GET', '/l/nothing', { token: null })).statusCode, 404);
    assert.equal((await get(c.id)).stats.clicks, 1);
    const recorded = await env.p.storage.db.selectFrom('link_clicks').selectAll().execute();
    assert.equal(recorded[0].message_id, first.id);

    await settle(env, clock, 3);
    const hook = rx.received.find((r) => r.type === 'campaign.completed');
    assert.ok(hook, 'campaign.completed was delivered');
    assert.equal(hook.body.data.id, c.id);
    assert.equal(rx.badSignatures, 0);
  });

  test('bad campaigns are refused whole, naming the field', async () => {
    const bad = async (body: Record<string, unknown>, field: string) => {
      const res = await env.req('POST', '/v1/campaigns', { body: { name: 'x', ...body } });
      assert.equal(res.statusCode >= 400, true, res.body);
      assert.match(JSON.stringify(res.json().error.details), new RegExp(field), res.body);
    };
    await bad({ audience: { csv: 'name\nAda' }, body: 'hi' }, 'audience.csv');
    await bad({ audience: { csv: 'phone\n+12025550100' } }, 'body');
    await bad({ audience: { csv: 'phone\n+12025550100' }, body: 'hi', send_window: { start: '9am', end: '18:00' } }, 'send_window.start');
    await bad({ audience: { csv: 'phone\n+12025550100' }, body: 'hi {{ x' }, 'body');
    await bad({ audience: { list_id: 'list_nope' }, body: 'hi' }, 'list_nope');
    await bad({ audience: { csv: 'phone\n+12025550100' }, body: 'hi', from: '+12025550999' }, 'from');
    const reader = await env.key({ scopes: ['messages:read'] });
    assert.equal((await env.req('POST', '/v1/campaigns', { token: reader, body: { name: 'x', audience: { csv: 'phone\n+12025550100' }, body: 'hi' } })).statusCode, 403);
    const openapi = (await env.req('GET', '/openapi.json', { token: null })).json();
    for (const path of ['/v1/campaigns', '/v1/campaigns/{id}/pause', '/v1/campaigns/{id}/recipients', '/v1/templates/{id}/preview', '/v1/lists/{id}/contacts', '/v1/segments']) assert.ok(openapi.paths[path], path);
    const before = await env.p.storage.db.selectFrom('campaigns').select('id').execute();
    await bad({ audience: { csv: 'phone\n+12025550100' }, body: 'hi', rate_per_minute: 0 }, 'rate_per_minute');
    assert.equal((await env.p.storage.db.selectFrom('campaigns').select('id').execute()).length, before.length);
  });

  test('at 300 messages a minute, messages are released at that pace', async () => {
    const rows = [['phone'], ...Array.from({ length: 20 }, (_, i) => [`+1202555${String(2000 + i)}`])];
    const c = await create({ audience: { csv: csvOf(rows) }, body: 'paced', rate_per_minute: 300 });
    await action(c.id, 'start');
    await env.p.runDue();
    assert.equal((await countMessages(c.id)).length, 1);
    for (const [advance, expected] of [[1000, 6], [1000, 11], [600, 14], [10_000, 20]] as const) {
      clock.advance(advance);
      await env.p.runDue();
      assert.equal((await countMessages(c.id)).length, expected, `after ${advance} ms more`);
    }
    await settle(env, clock, 3);
    assert.equal((await get(c.id)).status, 'completed');
  });

  test('pause holds released messages, resume sends each once, cancel leaves nothing queued', async () => {
    const rows = [['phone'], ...Array.from({ length: 40 }, (_, i) => [`+1202555${String(3000 + i)}`])];
    const c = await create({ audience: { csv: csvOf(rows) }, body: 'hold on' });
    await action(c.id, 'start');
    await env.p.campaignRunner.runOnce();
    assert.equal((await countMessages(c.id)).length, 40);
    const paused = await action(c.id, 'pause');
    assert.equal(paused.status, 'paused');
    await settle(env, clock, 3);
    let msgs = await countMessages(c.id);
    assert.ok(msgs.every((m) => m.status === 'queued'), 'nothing went out while paused');
    assert.equal((await get(c.id)).stats.queued, 40);

    assert.equal((await action(c.id, 'resume')).status, 'running');
    await settle(env, clock, 5);
    msgs = await countMessages(c.id);
    assert.equal(msgs.length, 40);
    assert.equal(new Set(msgs.map((m) => m.to_addr)).size, 40, 'no recipient got two messages');
    assert.ok(msgs.every((m) => m.status === 'delivered'));
    const done = await get(c.id);
    assert.equal(done.status, 'completed');
    assert.equal(done.stats.delivered, 40);
    assert.equal((await env.req('POST', `/v1/campaigns/${c.id}/pause`)).statusCode, 400);

    const rows2 = [['phone'], ...Array.from({ length: 30 }, (_, i) => [`+1202555${String(4000 + i)}`])];
    const c2 = await create({ audience: { csv: csvOf(rows2) }, body: 'never mind', rate_per_minute: 600 });
    await action(c2.id, 'start');
    clock.advance(1000);
    await env.p.campaignRunner.runOnce();
    const released = (await countMessages(c2.id)).length;
    assert.ok(released > 0 && released < 30, String(released));
    const canceled = await action(c2.id, 'cancel');
    assert.equal(canceled.status, 'canceled');
    assert.equal(canceled.stats.queued, 0);
    assert.equal(canceled.stats.canceled, 30);
    assert.ok((await countMessages(c2.id)).every((m) => m.status === 'canceled'));
    await settle(env, clock, 3);
    assert.equal((await countMessages(c2.id)).length, released, 'nothing more was released after the cancel');
  });

  test('a release repeated after a crash (messages committed, recipients not yet marked) sends nothing twice', async () => {
    const rows = [['phone'], ...Array.from({ length: 10 }, (_, i) => [`+1202555${String(6000 + i)}`])];
    const c = await create({ audience: { csv: csvOf(rows) }, body: 'once' });
    await action(c.id, 'start');
    await env.p.campaignRunner.runOnce();
    const first = (await env.p.storage.db.selectFrom('campaign_recipients').select(['seq', 'message_id']).where('campaign_id', '=', c.id).orderBy('seq').execute()).map((r) => r.message_id);
    // What a crash between the commit and the recipients' update leaves behind.
    await env.p.storage.db.updateTable('campaign_recipients').set({ status: 'pending', message_id: null }).where('campaign_id', '=', c.id).execute();
    await env.p.storage.db.updateTable('campaigns').set({ released: 0 }).where('id', '=', c.id).execute();
    await env.p.campaignRunner.runOnce();
    const again = (await env.p.storage.db.selectFrom('campaign_recipients').select(['seq', 'message_id']).where('campaign_id', '=', c.id).orderBy('seq').execute()).map((r) => r.message_id);
    assert.deepEqual(again, first);
    const sent = await env.p.storage.db.selectFrom('messages').select('id').where('to_addr', 'in', rows.slice(1).map((r) => r[0])).execute();
    assert.equal(sent.length, 10);
    await settle(env, clock, 3);
    assert.equal((await get(c.id)).stats.delivered, 10);
  });

  test('the send window holds recipients until their local time opens', async () => {
    // 10:00 in New York (202) and 07:00 in Los Angeles (415); the window opens at 09:00 local.
    clock.set(Date.parse('2026-01-06T15:00:00Z'));
    const c = await create({ audience: { csv: csvOf([['phone'], [sim(0)], [sim(0, '415')]]) }, body: 'good morning', send_window: { start: '09:00', end: '18:00' } });
    await action(c.id, 'start');
    await env.p.runDue();
    let msgs = await countMessages(c.id);
    assert.deepEqual(msgs.map((m) => m.to_addr), [sim(0)]);
    clock.set(Date.parse('2026-01-06T17:00:30Z'));
    await settle(env, clock, 3);
    msgs = await countMessages(c.id);
    assert.equal(msgs.length, 2);
    assert.equal((await get(c.id)).status, 'completed');
  });

  test('lists and segments as audiences; a scheduled start waits for start_at', async () => {
    const ids: string[] = [];
    for (const [i, tags] of [[20, ['vip']], [21, ['vip', 'east']], [22, []]] as const) {
      ids.push((await env.req('POST', '/v1/contacts', { body: { phone: `+1202555${5000 + i}`, name: `N${i}`, tags } })).json().id);
    }
    const list = (await env.req('POST', '/v1/lists', { body: { name: 'friends' } })).json();
    const added = await env.req('POST', `/v1/lists/${list.id}/contacts`, { body: { contact_ids: [ids[0], ids[2]], phones: ['+1 202 555 5023'] } });
    assert.equal(added.statusCode, 200, added.body);
    assert.equal(added.json().added, 3);
    assert.equal((await env.req('POST', `/v1/lists/${list.id}/contacts`, { body: { contact_ids: [ids[0]] } })).json().added, 0);
    assert.equal((await env.req('POST', `/v1/lists/${list.id}/contacts`, { body: { contact_ids: ['contact_nope'] } })).statusCode, 404);
    assert.equal((await env.req('GET', `/v1/lists/${list.id}/contacts`)).json().data.length, 3);

    const seg = await env.req('POST', '/v1/segments', { body: { name: 'vips in marketing', filter: { tags: ['vip'], consent: { status: 'opted_in', purpose: 'marketing' } } } });
    assert.equal(seg.statusCode, 201, seg.body);
    await env.req('POST', '/v1/consent', { body: { phone: '+12025555021', status: 'opted_in', purpose: 'marketing' } });
    const members = (await env.req('GET', `/v1/segments/${seg.json().id}/contacts`)).json().data;
    assert.deepEqual(members.map((m: { phone: string }) => m.phone), ['+12025555021']);
    assert.equal((await env.req('POST', '/v1/segments', { body: { name: 'x', filter: { colour: 'red' } } })).statusCode, 400);

    const bySegment = await create({ audience: { segment_id: seg.json().id }, body: 'Hi {{ name }}', purpose: 'marketing' });
    const byList = await create({ audience: { list_id: list.id }, body: 'Hi {{ phone }}', start_at: new Date(clock.now() + 3600_000).toISOString() });
    await action(bySegment.id, 'start');
    assert.equal((await action(byList.id, 'start')).status, 'scheduled');
    await settle(env, clock, 3);
    const s = await get(bySegment.id);
    assert.equal(s.status, 'completed');
    assert.equal(s.stats.total, 1);
    assert.equal(s.stats.delivered, 1);
    assert.equal((await countMessages(byList.id)).length, 0);
    clock.advance(3600_000);
    await settle(env, clock, 3);
    const l = await get(byList.id);
    assert.equal(l.status, 'completed');
    assert.equal(l.stats.total, 3);
    assert.equal(l.stats.delivered, 3);
  });
});

describe('campaigns from the CLI', () => {
  const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-campaign-cli-'));
  let database: { url: string; drop: () => Promise<void> };
  before(async () => {
    database = await freshDatabase(dir);
  });
  after(async () => {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('campaigns create --csv FILE follows the campaign to completion', () => {
    const file = join(dir, 'audience.csv');
    writeFileSync(file, `phone,name\n${sim(0)},Ada\n${sim(1)},Bo\n${sim(14)},Cy\nnot a number,Di\n`);
    const env = { ...process.env, DATABASE_URL: database.url, SWITCHBOARD_ENCRYPTION_KEY: '5e'.repeat(32), LOG_LEVEL: 'warn', SWITCHBOARD_POLL_MS: '20', SWITCHBOARD_SIMULATOR_RECEIPT_MS: '20' };
    const r = spawnSync(process.execPath, [BIN, 'campaigns', 'create', '--name', 'cli', '--csv', file, '--body', 'Hi {{ name }}', '--json', '--timeout', '60'], { env, encoding: 'utf8', timeout: 90_000 });
    assert.equal(r.status, 0, r.stderr);
    const c = JSON.parse(r.stdout);
    assert.equal(c.status, 'completed', r.stdout);
    assert.equal(c.stats.total, 4);
    assert.equal(c.stats.suppressed, 1);
    assert.equal(c.stats.sent + c.stats.failed, 3, JSON.stringify(c.stats));
    const shown = spawnSync(process.execPath, [BIN, 'campaigns', 'get', c.id], { env, encoding: 'utf8', timeout: 60_000 });
    assert.match(shown.stdout, new RegExp(`^${c.id} completed: 4 recipients`));
  });
});
