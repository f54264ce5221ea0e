// Several processes on one database: an SMPP bind held by one worker at a time and taken over
// when its owner is killed (real `switchboard start --role worker` processes, SIGKILL);
// LISTEN/NOTIFY waking a worker in another platform (PostgreSQL); backpressure on an account's
// backlog; throughput limits holding with two workers claiming at once (PostgreSQL).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { sql } from 'kysely';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform, type Platform, type PlatformRole } from '../src/platform.ts';
import { DIALECT, TEST_DEFAULTS, eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { TestSmsc } from './smsc.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

/** Another platform on the same database, as a second process would be (its own pool, its own worker id). */
async function peer(env: TestEnv, role: PlatformRole, config: Partial<Config> = {}): Promise<Platform> {
  const p = await createPlatform(loadConfig({}, { ...TEST_DEFAULTS, DATABASE_URL: env.dbPath, ...config }), { role, logger: createLogger('silent'), processMetrics: false });
  if (role !== 'api') await p.startWorkers();
  return p;
}

/** `switchboard start --role worker` as a child process; `log` collects its JSON log lines. */
function startWorker(env: TestEnv, vars: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, 'start', '--role', 'worker'], {
    env: { PATH: process.env.PATH, DATABASE_URL: env.dbPath, SWITCHBOARD_ENCRYPTION_KEY: TEST_DEFAULTS.SWITCHBOARD_ENCRYPTION_KEY, LOG_LEVEL: 'info', SWITCHBOARD_POLL_MS: '50', ...vars },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const worker = { child, log: [] as Array<Record<string, unknown>>, output: '' };
  let partial = '';
  child.stdout!.on('data', (d) => {
    partial += d;
    const lines = partial.split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      worker.output += line + '\n';
      try {
        worker.log.push(JSON.parse(line));
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.on('data', (d) => (worker.output += d));
  return worker;
}
type Worker = ReturnType<typeof startWorker>;

const tookLease = (w: Worker) => w.log.some((l) => l.msg === 'connector lease taken');

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

describe('an SMPP bind is held by one worker process at a time', () => {
  const smsc = new TestSmsc({ receiptDelayMs: 30 });
  let env: TestEnv;
  const workers: Worker[] = [];
  before(async () => {
    await smsc.start();
    env = await testEnv({ role: 'api' });
    const now = Date.now();
    const db = env.p.storage.db;
    const config = { host: '127.0.0.1', port: smsc.port, system_id: smsc.systemId, password: smsc.password, window: 5, throughput: 100, response_timeout_ms: 1000, reconnect_min_ms: 50, reconnect_max_ms: 300 };
    await db.insertInto('connectors').values({ id: 'conn_smpp', account_id: null, name: 'test SMSC', type: 'smpp', config: JSON.stringify(config), enabled: 1, created_at: now, updated_at: now }).execute();
    await db.insertInto('routes').values({ id: 'route_smpp', account_id: env.accountId, priority: 10, filters: JSON.stringify({ prefix: ['+1415'] }), connector_id: 'conn_smpp', strategy: null, created_at: now }).execute();
    env.p.router.invalidate();
  });
  after(async () => {
    await Promise.all(workers.map((w) => stopChild(w.child)));
    await env.close();
    await smsc.stop();
  });

  test('two workers, one bind; the owner is killed; the other binds within seconds and every message is delivered', async () => {
    // Long enough that a starved event loop on a loaded machine still renews in time.
    const LEASE_MS = 5000;
    const vars = { SWITCHBOARD_CONNECTOR_LEASE_MS: String(LEASE_MS) };
    workers.push(startWorker(env, vars), startWorker(env, vars));
    await eventually(async () => smsc.boundSessions().length === 1, 120_000, 'one worker bound');
    // Two more renewals: the other worker keeps out, nobody rebinds.
    await new Promise((r) => setTimeout(r, (2 * LEASE_MS) / 3 + 500));
    assert.equal(smsc.boundSessions().length, 1);
    assert.equal(smsc.binds.length, 1, 'one bind since the start');
    const owners = workers.filter(tookLease);
    assert.equal(owners.length, 1, 'one worker took the lease');
    const [owner] = owners;
    const other = workers.find((w) => w !== owner)!;
    // The API process never opens the bind, even when asked for the connector.
    assert.equal(await env.p.connectors.get('conn_smpp'), null);
    assert.equal(env.p.connectors.running().length, 0);

    const N = 40;
    const ids: string[] = [];
    let killedAt = 0;
    for (let i = 0; i < N; i++) {
      const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: sim(i % 10, '415'), body: `failover ${i}` } });
      assert.equal(res.statusCode, 202, res.body);
      ids.push(res.json().id);
      if (i === 15) {
        await eventually(async () => smsc.messages.length >= 5, 10_000, 'traffic at the SMSC');
        owner.child.kill('SIGKILL');
        killedAt = Date.now();
      }
    }
    await eventually(async () => tookLease(other), 30_000, 'the other worker takes the lease');
    const rebound = await eventually(async () => smsc.binds.find((b) => b.at > killedAt), 10_000, 'a new bind');
    const takeoverMs = rebound.at - killedAt;
    // An expired lease is taken at the next renewal of the survivor: lease + one renewal, plus a
    // bind (and slack for a loaded machine).
    assert.ok(takeoverMs < LEASE_MS + LEASE_MS / 3 + 5000, `bind taken over in ${takeoverMs} ms`);

    const get = async (id: string) => (await env.req('GET', `/v1/messages/${id}`, { token: env.liveKey })).json();
    let last: Array<{ status: string; attempts: number }> = [];
    // Attempts the dead worker had in flight are found when their 15 s message lease runs out.
    await eventually(
      async () => {
        last = await Promise.all(ids.map(get));
        return last.every((m) => m.status === 'delivered');
      },
      120_000,
      'every message delivered',
    ).catch((err) => {
      const counts: Record<string, number> = {};
      for (const m of last) counts[m.status] = (counts[m.status] ?? 0) + 1;
      throw new Error(`${err.message}: ${JSON.stringify(counts)}\n${other.output.slice(-2000)}`);
    });
    assert.equal(smsc.boundSessions().length, 1, 'one bind after the takeover');
    const distinct = new Set(smsc.messages.map((m) => m.text)).size;
    assert.equal(distinct, N, 'every message reached the SMSC');
    process.stdout.write(`# takeover: bind moved ${takeoverMs} ms after SIGKILL; ${N} delivered; the SMSC took ${smsc.messages.length} submit_sm for ${distinct} messages\n`);
  });
});

describe('a worker that stops cleanly hands its bind over at the next renewal', () => {
  const smsc = new TestSmsc({ receiptDelayMs: 10 });
  let env: TestEnv;
  const peers: Platform[] = [];
  before(async () => {
    await smsc.start();
    env = await testEnv({ role: 'api' });
  });
  after(async () => {
    await Promise.all(peers.map((p) => p.close()));
    await env.close();
    await smsc.stop();
  });

  test('an SMPP connector created through the API is bound by one of two workers; closing that one moves the bind', async () => {
    const LEASE = { SWITCHBOARD_CONNECTOR_LEASE_MS: 1500 };
    peers.push(await peer(env, 'worker', LEASE), await peer(env, 'worker', LEASE));
    const created = await env.req('POST', '/v1/connectors', {
      token: env.liveKey,
      body: { name: 'test SMSC', type: 'smpp', config: { host: '127.0.0.1', port: smsc.port, system_id: smsc.systemId, password: smsc.password, reconnect_min_ms: 50, reconnect_max_ms: 300 } },
    });
    assert.equal(created.statusCode, 201, created.body);
    const id = created.json().id;
    await eventually(async () => smsc.boundSessions().length === 1, 10_000, 'one worker bound');
    const owner = peers.find((p) => p.connectorLeases.owned().includes(id))!;
    const other = peers.find((p) => p !== owner)!;
    assert.deepEqual(other.connectorLeases.owned(), []);
    assert.ok(!other.connectors.running().some((c) => c.id === id), 'the other worker has no session');
    await owner.close();
    peers.splice(peers.indexOf(owner), 1);
    // Released, not left to expire: no row names the closed worker.
    const lease = await env.p.storage.db.selectFrom('connector_leases').selectAll().where('connector_id', '=', id).executeTakeFirst();
    assert.notEqual(lease?.owner, owner.connectorLeases.owner, 'the closed worker holds no lease');
    await eventually(async () => other.connectorLeases.owned().includes(id) && smsc.boundSessions().length === 1, 5000, 'the bind moved');
    assert.equal(smsc.binds.length, 2);
  });
});

describe('LISTEN/NOTIFY wakes a worker in another process', { skip: DIALECT !== 'postgres' && 'PostgreSQL only: SQLite wakes its one worker in memory' }, () => {
  let env: TestEnv;
  let worker: Platform;
  const POLL = { SWITCHBOARD_POLL_MS: 30_000, SWITCHBOARD_LISTEN_POLL_MS: 30_000 };
  before(async () => {
    env = await testEnv({ role: 'api', config: POLL });
    worker = await peer(env, 'worker', POLL);
  });
  after(async () => {
    await worker.close();
    await env.close();
  });

  const sendAndTime = async (to: string) => {
    const started = Date.now();
    const res = await env.req('POST', '/v1/messages', { body: { to, body: 'wake up' } });
    assert.equal(res.statusCode, 202, res.body);
    const id = res.json().id;
    await eventually(async () => ['sent', 'delivered'].includes((await env.req('GET', `/v1/messages/${id}`)).json().status), 10_000, 'the message sent by the other process');
    return Date.now() - started;
  };

  test('a message accepted by an api-only platform is sent by a worker-only platform long before its 30 s poll', async () => {
    await eventually(async () => worker.workSignal!.active, 5000, 'the listener');
    await new Promise((r) => setTimeout(r, 200)); // the worker's first passes are done; it sleeps
    const ms = await sendAndTime(sim(1));
    assert.ok(ms < 5000, `sent after ${ms} ms`);
  });

  test('the listener reconnects when its connection is cut, and wakes the worker again', async () => {
    const cut = await sql<{ n: number }>`select count(pg_terminate_backend(pid))::int as n from pg_stat_activity where datname = current_database() and query = 'LISTEN switchboard_work'`.execute(env.p.storage.db);
    assert.equal(cut.rows[0].n, 1);
    await eventually(async () => !worker.workSignal!.active, 5000, 'the listener noticing the cut');
    await eventually(async () => worker.workSignal!.active, 10_000, 'the listener back');
    await new Promise((r) => setTimeout(r, 200));
    const ms = await sendAndTime(sim(2));
    assert.ok(ms < 5000, `sent after ${ms} ms`);
  });
});

describe('backpressure: an account over its backlog ceiling gets 429', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_MAX_ACCOUNT_BACKLOG: 5 } });
  });
  after(() => env.close());

  test('accepted up to the ceiling, then 429 RATE_LIMITED with Retry-After; accepted again once drained; other accounts unaffected', async () => {
    for (let i = 0; i < 5; i++) assert.equal((await env.req('POST', '/v1/messages', { body: { to: sim(i), body: `backlog ${i}` } })).statusCode, 202);
    const refused = await env.req('POST', '/v1/messages', { body: { to: sim(6), body: 'one too many' } });
    assert.equal(refused.statusCode, 429);
    assert.equal(refused.headers['retry-after'], '1');
    const err = refused.json().error;
    assert.equal(err.code, 'RATE_LIMITED');
    assert.equal(err.retryable, true);
    assert.equal(err.details.backlog_ceiling, 5);
    assert.ok(err.request_id);
    const batch = await env.req('POST', '/v1/messages/batch', { body: { messages: [{ to: sim(7), body: 'batched' }] } });
    assert.equal(batch.statusCode, 429);
    assert.equal(batch.headers['retry-after'], '1');
    assert.equal(batch.json().error.code, 'RATE_LIMITED');
    // Nothing was written by the refused requests.
    const rows = await env.p.storage.db.selectFrom('messages').select('id').where('account_id', '=', env.accountId).execute();
    assert.equal(rows.length, 5);

    const other = await env.p.accounts.create('Another tenant');
    const otherKey = await env.key({ accountId: other.id });
    assert.equal((await env.req('POST', '/v1/messages', { token: otherKey, body: { to: sim(8), body: 'not my backlog' } })).statusCode, 202);

    await env.p.startWorkers();
    await eventually(
      async () => (await env.p.storage.db.selectFrom('messages').select('id').where('account_id', '=', env.accountId).where('status', 'in', ['queued', 'sending']).execute()).length === 0,
      10_000,
      'the backlog drained',
    );
    // Counted again within half a second of the drain.
    await eventually(async () => (await env.req('POST', '/v1/messages', { body: { to: sim(9), body: 'room again' } })).statusCode === 202, 5000, 'accepted again');
  });
});

describe('throughput limits hold with two workers claiming at once', { skip: DIALECT !== 'postgres' && 'PostgreSQL only: SQLite runs one worker' }, () => {
  let env: TestEnv;
  let workers: Platform[] = [];
  before(async () => {
    env = await testEnv({ role: 'api' });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.close()));
    await env.close();
  });

  // What this proves: the slots two workers reserve do not overlap (the long-run rate holds).
  // What it does not: a claim transaction that commits after some of the slots it reserved have
  // passed releases those messages together, so the carrier can see a short burst (the max per
  // second is printed); see docs/architecture.md "Running several processes".
  test('a sender limited to 5 messages/s: 20 messages through two workers take at least 19 slot spacings', async () => {
    assert.equal((await env.req('POST', '/v1/senders', { body: { address: '+1 415 555 0150', throughput: 5 } })).statusCode, 201);
    // Started after the limit exists: other processes learn of a new limit within their 2 s cache.
    workers = [await peer(env, 'worker'), await peer(env, 'worker')];
    const acceptedAt = Date.now();
    const res = await env.req('POST', '/v1/messages/batch', { body: { messages: Array.from({ length: 20 }, (_, i) => ({ to: sim(i % 10), body: `paced ${i}`, from: '+14155550150' })) } });
    const ids: string[] = res.json().data.map((r: { message: { id: string } }) => r.message.id);
    assert.equal(ids.length, 20);
    const db = env.p.storage.db;
    const submits = await eventually(
      async () => {
        const rows = await db.selectFrom('simulator_messages').select(['reference', 'created_at']).where('reference', 'in', ids).execute();
        return rows.length === 20 && rows;
      },
      15_000,
      'all 20 submitted',
    );
    const times = submits.map((r) => Number(r.created_at)).sort((a, b) => a - b);
    let most = 0; // the most submits within any 1 s window, reported
    for (let i = 0, j = 0; i < times.length; i++) {
      while (times[i] - times[j] >= 1000) j++;
      most = Math.max(most, i - j + 1);
    }
    // The 20th slot is 19 spacings (200 ms) after the first, which is no earlier than the
    // accept: two workers taking the same slots would finish in half the time.
    assert.ok(times.at(-1)! - acceptedAt >= 19 * 200, `20 submits at 5/s take at least 3.8 s, took ${times.at(-1)! - acceptedAt} ms`);
    const events = await db.selectFrom('message_events').select(['data']).where('message_id', 'in', ids).where('status', '=', 'sending').execute();
    const byWorker = new Map<string, number>();
    for (const e of events) {
      const w = JSON.parse(e.data).worker as string;
      byWorker.set(w, (byWorker.get(w) ?? 0) + 1);
    }
    process.stdout.write(`# throttle across workers: 20 submits in ${times.at(-1)! - times[0]} ms, at most ${most} in any second; attempts per worker ${JSON.stringify([...byWorker.values()])}\n`);
  });
});
