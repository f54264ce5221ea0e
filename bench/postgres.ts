// PostgreSQL with separate roles: one `switchboard start --role api` process and worker processes
// (`--role worker`) against one fresh database (created here, dropped at the end), the simulator
// delivering (test mode, 50 ms receipts), the load from this process. Phases:
//   1. 1 api + 1 worker, single-message POSTs for BENCH_SECONDS (default 30): accepted/s with
//      the worker busy in parallel, and end to end (accept → receipt applied) delivered/s.
//   2. worker throughput alone: with no worker running, the api accepts BENCH_SECONDS of load
//      (a backlog); then 1 worker starts and drains it → delivered/s per worker process.
//   3. the same with 2 workers started together → delivered/s in all and per process, which
//      should not fall below phase 2's (issue 6: "the per-process rate does not fall as a second
//      worker is added"). Which worker took each message is sampled from the lease owner.
// Every phase states accepted, delivered, lost and duplicated (simulator `submits` > 1).
import pg from 'pg';
import { loadavg } from 'node:os';
import { Client, FINAL_STATUSES, cpuSeconds, drain, loadLine, machine, percentile, recipient, runLoad, sleep, startServer, statusLine, sustained, writeSection, type ServerProcess } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const CONNECTIONS = 50;
const ADMIN_URL = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const FINAL = FINAL_STATUSES.map((s) => `'${s}'`).join(',');

async function main() {
  const loadAtStart = loadavg()[0];
  const dbName = `switchboard_bench_${Date.now().toString(36)}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${dbName}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${dbName}`;
  const env = { DATABASE_URL: url.toString(), SWITCHBOARD_ENCRYPTION_KEY: '7f'.repeat(32), SWITCHBOARD_SIMULATOR_RECEIPT_MS: '50' };
  const db = new pg.Client({ connectionString: url.toString() });
  let api: ServerProcess | null = null;
  let workers: ServerProcess[] = [];
  let client: Client | null = null;
  const rows: string[] = [];
  const blocked: string[] = [];
  try {
    api = await startServer(env, ['--role', 'api']);
    await db.connect();
    client = new Client(api.port, api.testKey, CONNECTIONS);
    const q = async (sql: string, params: unknown[] = []) => (await db.query(sql, params)).rows as Array<Record<string, string | number | null>>;
    const counts = async (since: number) => {
      const [r] = await q(`select count(*) as total, count(*) filter (where status in (${FINAL})) as final, count(*) filter (where status = 'delivered') as delivered from messages where direction = 'outbound' and created_at >= $1`, [since]);
      return { total: Number(r.total), final: Number(r.final), delivered: Number(r.delivered) };
    };
    // Which worker holds each message's lease, sampled every 200 ms while a phase runs.
    const owners = new Map<string, string>();
    let sampling = false;
    const sampler = async () => {
      while (sampling) {
        for (const r of await q(`select id, lease_owner from messages where lease_owner is not null`)) owners.set(String(r.id), String(r.lease_owner));
        await sleep(200);
      }
    };
    const startWorkers = async (n: number) => {
      workers = await Promise.all(Array.from({ length: n }, () => startServer(env, ['--role', 'worker'])));
    };
    const stopWorkers = async () => {
      await Promise.all(workers.map((w) => w.stop()));
      workers = [];
    };
    /** Accepted ids → delivered, lost (missing or not final), final otherwise; duplicated. */
    const audit = async (ids: string[]) => {
      let delivered = 0;
      let otherFinal = 0;
      let found = 0;
      for (let i = 0; i < ids.length; i += 5000) {
        for (const r of await q(`select status from messages where id = any($1)`, [ids.slice(i, i + 5000)])) {
          found++;
          if (r.status === 'delivered') delivered++;
          else if (FINAL_STATUSES.includes(String(r.status))) otherFinal++;
        }
      }
      const [d] = await q(`select count(*) as n from simulator_messages where submits > 1`);
      return `${ids.length} accepted, ${delivered} delivered, ${otherFinal} final otherwise, ${ids.length - delivered - otherFinal} lost (${ids.length - found} missing), ${d.n} submitted twice (cumulative)`;
    };
    const e2e = async (since: number) => {
      const [r] = await q(`select count(*) as n, min(m.created_at) as first, max(e.at) as last from messages m join message_events e on e.message_id = m.id and e.status = 'delivered' where m.direction = 'outbound' and m.created_at >= $1`, [since]);
      return { n: Number(r.n), seconds: (Number(r.last) - Number(r.first)) / 1000 };
    };
    const body = (phase: number) => (i: number) => ({ to: recipient(i), body: `PG ${phase}.${i}: your appointment is tomorrow at 10:00.` });

    // Warm up (and prove the path works end to end across the two processes).
    await startWorkers(1);
    const warm = await runLoad(client, { seconds: 2, concurrency: 10, body: body(0) });
    const warmStart = Date.now() - 3000;
    const warmDrain = await drain(async () => counts(warmStart), { maxSeconds: 60, stallSeconds: 30 });
    const w = await counts(warmStart);
    if (warm.accepted.length === 0 || w.delivered < w.total) {
      blocked.push(`Warm-up: ${warm.accepted.length} accepted, ${w.delivered} of ${w.total} delivered after ${warmDrain.toFixed(0)} s: the api/worker split did not deliver.`);
    }

    // Phase 1: 1 api + 1 worker together.
    let since = Date.now();
    const cpu0 = [cpuSeconds(api.child.pid), cpuSeconds(workers[0].child.pid)];
    const load1 = await runLoad(client, { seconds: SECONDS, concurrency: CONNECTIONS, body: body(1) });
    const drained1 = await drain(async () => counts(since), { maxSeconds: 300, stallSeconds: 60 });
    const e1 = await e2e(since);
    const cpu1 = [cpuSeconds(api.child.pid) - cpu0[0], cpuSeconds(workers[0].child.pid) - cpu0[1]];
    rows.push(`| 1 api + 1 worker: single POST /v1/messages, ${CONNECTIONS} connections, ${SECONDS} s | ${(load1.accepted.length / load1.seconds).toFixed(0)} accepted/s (lowest full second ${sustained(load1.perSecond)}) | p50 ${percentile(load1.latencies, 50).toFixed(1)} ms, p99 ${percentile(load1.latencies, 99).toFixed(1)} ms; answers ${statusLine(load1.statuses)} |`);
    rows.push(`| 1 api + 1 worker: end to end through the simulator | ${(e1.n / e1.seconds).toFixed(0)} delivered/s (first accept → last receipt) | ${await audit(load1.accepted)}; drained ${drained1.toFixed(1)} s after the load; CPU: api ${cpu1[0].toFixed(1)} s (${(load1.accepted.length / cpu1[0]).toFixed(0)} accepted per CPU-second), worker ${cpu1[1].toFixed(1)} s (${(e1.n / cpu1[1]).toFixed(0)} delivered per CPU-second) |`);
    await stopWorkers();

    // Phases 2 and 3: a backlog accepted with no worker running, then drained by n workers.
    let perProcessOne = 0;
    for (const n of [1, 2]) {
      since = Date.now();
      const load = await runLoad(client, { seconds: SECONDS, concurrency: CONNECTIONS, body: body(n + 1) });
      rows.push(`| api alone (backlog for ${n} worker${n > 1 ? 's' : ''}), ${SECONDS} s | ${(load.accepted.length / load.seconds).toFixed(0)} accepted/s | p50 ${percentile(load.latencies, 50).toFixed(1)} ms, p99 ${percentile(load.latencies, 99).toFixed(1)} ms |`);
      owners.clear();
      sampling = true;
      const sampled = sampler();
      const t0 = Date.now();
      await startWorkers(n);
      const cpuStart = workers.map((x) => cpuSeconds(x.child.pid));
      const drained = await drain(async () => counts(since), { maxSeconds: 300, stallSeconds: 60 });
      const startedIn = (Date.now() - t0) / 1000 - drained;
      const cpu = workers.map((x, i) => cpuSeconds(x.child.pid) - cpuStart[i]);
      sampling = false;
      await sampled;
      // From the first receipt applied to the last: the workers' start-up (seconds of module
      // loading on a busy machine) is not the dispatch rate.
      const [d] = await q(`select count(*) as n, min(e.at) as first, max(e.at) as last from messages m join message_events e on e.message_id = m.id and e.status = 'delivered' where m.direction = 'outbound' and m.created_at >= $1`, [since]);
      const rate = Number(d.n) / Math.max(0.001, (Number(d.last) - Number(d.first)) / 1000);
      const c = await counts(since);
      const share = new Map<string, number>();
      for (const o of owners.values()) share.set(o, (share.get(o) ?? 0) + 1);
      const perProcess = rate / n;
      if (n === 1) perProcessOne = perProcess;
      rows.push(
        `| ${n} worker${n > 1 ? 's' : ''} draining the backlog | ${rate.toFixed(0)} delivered/s, ${perProcess.toFixed(0)} per worker process${n > 1 && perProcessOne ? ` (${((perProcess / perProcessOne) * 100).toFixed(0)} % of one worker's)` : ''} | ${await audit(load.accepted)}; workers up in ${startedIn.toFixed(1)} s, then drained in ${drained.toFixed(1)} s; leases seen by sampling: ${[...share.values()].join(' / ') || 'none'}; CPU: ${cpu.map((s) => `${s.toFixed(1)} s`).join(', ')}, ${(c.delivered / cpu.reduce((a, b) => a + b, 0)).toFixed(0)} messages per worker CPU-second |`,
      );
      await stopWorkers();
    }
    rows.push(`| peak RSS | api ${api.peakRssMb().toFixed(0)} MB | |`);

    const table = ['| measure | result | detail |', '|---|---|---|', ...rows].join('\n');
    console.log(table);
    if (blocked.length) console.log(blocked.join('\n'));
    writeSection(
      'PostgreSQL, api and worker processes (bench/postgres.ts)',
      `Machine: ${machine()}, PostgreSQL on the same machine (127.0.0.1). Run: ${new Date().toISOString().slice(0, 16)}Z, ${loadLine(loadAtStart)}. One \`switchboard start --role api\` process and \`--role worker\` processes against one fresh database, the simulator delivering in test mode with 50 ms receipts, the load from a separate process (bench/lib.ts Client). The database, the api, the workers and the load generator share the two cores, so a second worker competes with the first for CPU: read the per-process figure with the CPU seconds beside it. Targets (issue 6): at least 5,000 accepted/s with 1 api + 1 worker, and a per-process rate that does not fall as a second worker is added.${blocked.length ? `\n\n**Blocked:** ${blocked.join(' ')}` : ''}\n\n${table}`,
    );
  } finally {
    client?.close();
    await Promise.all(workers.map((x) => x.stop()));
    await api?.stop();
    await db.end().catch(() => {});
    await admin.query(`drop database if exists ${dbName} with (force)`).catch((e) => console.error(`could not drop ${dbName}: ${e}`));
    await admin.end();
  }
}

await main();
