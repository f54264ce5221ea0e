// The workflow engine (issue #8): how many events per second start runs through POST /v1/events,
// and how precisely timers fire with 10,000 runs waiting at once on the real clock.
// `node --import tsx bench/workflows.ts [events] [waiting] [seconds the steady case spreads over]`; BENCH_DATABASE_URL=postgres://… runs
// it on PostgreSQL (a fresh database is expected). Bounded: well under a minute on SQLite.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform } from '../src/platform.ts';
import { transaction } from '../src/storage/transactions.ts';
import type { WorkflowTx } from '../src/workflows/workflow-tables.ts';
import { loadavg } from 'node:os';
import { loadLine, machine, percentile, writeSection } from './lib.ts';

const EVENTS = Number(process.argv[2] ?? 2000);
const WAITING = Number(process.argv[3] ?? 10_000);
const STEADY_S = Number(process.argv[4] ?? 20);
const CONCURRENCY = 16;

const NOTE = `In the burst, lateness is bounded by throughput, not by the timers: 10,000 runs falling due within 2 s
ask for ~5,000 run steps per second (each wait's end and the stop after it are two steps, each a
conditional UPDATE and its step rows), more than one process on a shared 2-core machine commits,
so the last runs of the window fire seconds late. A single due run fires within the engine's
poll (it sleeps until the next due_at, at most 250 ms) plus one step. Figures vary by a factor of
two between runs while other sessions load the machine (see the load average).`;

const phone = (i: number) => `+1202555${String(100 + (i % 10)).padStart(4, '0')}`;

async function main() {
  const load0 = loadavg()[0];
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-wf-'));
  const url = process.env.BENCH_DATABASE_URL ?? join(dir, 'bench.db');
  const dialect = url.startsWith('postgres') ? 'PostgreSQL' : 'SQLite';
  const config = loadConfig({}, { DATABASE_URL: url, LOG_LEVEL: 'silent', SWITCHBOARD_ENCRYPTION_KEY: '7f'.repeat(32), SWITCHBOARD_ALLOW_PRIVATE_URLS: true, SWITCHBOARD_POLL_MS: 50 });
  const p = await createPlatform(config, { logger: createLogger('silent'), processMetrics: false });
  const app = await buildApp(p);
  const { id: accountId } = await p.accounts.ensureDefaultAccount('Bench');
  const key = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'test' })).secret;
  const req = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    app.inject({ method, url: path, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: body === undefined ? undefined : JSON.stringify(body) });

  // 1. Events that start runs: each starts one run of a workflow that then waits a day.
  const parked = await req('POST', '/v1/workflows', { name: 'Parked', trigger: { event: 'bench.started' }, steps: [{ id: 'later', type: 'wait', duration: '1d' }] });
  if (parked.statusCode !== 201) throw new Error(parked.body);
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < EVENTS) {
        const i = next++;
        const s = performance.now();
        const res = await req('POST', '/v1/events', { name: 'bench.started', contact: { phone: phone(i) }, data: { i, order_id: `O-${i}` }, idempotency_key: `bench-${i}` });
        if (res.statusCode !== 200) throw new Error(res.body);
        latencies.push(performance.now() - s);
      }
    }),
  );
  const apiSeconds = (performance.now() - t0) / 1000;
  // …and the engine taking each new run to its first wait.
  const e0 = performance.now();
  while ((await p.workflows.engine.runOnce()) > 0);
  const engineSeconds = (performance.now() - e0) / 1000;
  latencies.sort((a, b) => a - b);

  // 2. Timer precision: WAITING runs waiting at once, each until its own time. Spread over 20 s
  // (500 falling due a second: the steady case) and then all within 2 s (a burst).
  const timed = await req('POST', '/v1/workflows', { name: 'Timed', trigger: { event: 'bench.timed' }, steps: [{ id: 'nap', type: 'wait', until: 'data.at' }, { id: 'done', type: 'stop' }] });
  if (timed.statusCode !== 201) throw new Error(timed.body);
  const wf = await p.storage.db.selectFrom('workflows' as never).selectAll().where('id' as never, '=', timed.json().id as never).executeTakeFirstOrThrow();
  const def = await p.workflows.engine.definition(p.storage.db as never, timed.json().id, 1);
  const contact = await p.contacts.ensure(p.storage.db, accountId, 'test', phone(1));
  const db = p.storage.db as unknown as import('kysely').Kysely<import('../src/workflows/workflow-tables.ts').WorkflowDB>;
  const timerRun = async (label: string, windowMs: number) => {
    // Created in batches through the engine's own startRun (the API path is measured above).
    const c0 = performance.now();
    const firesAt = Date.now() + 4000 + WAITING * 0.3;
    for (let i = 0; i < WAITING; i += 1000) {
      await transaction(p.storage.db, async (tx) => {
        for (let j = i; j < Math.min(WAITING, i + 1000); j++) {
          const at = firesAt + Math.floor((j / WAITING) * windowMs);
          await p.workflows.engine.startRun(tx as unknown as WorkflowTx, wf as never, def, contact.id, { id: `evt_bench_${label}_${j}`, name: 'bench.timed' }, { at: new Date(at).toISOString(), label }, Date.now());
        }
      });
    }
    const createSeconds = (performance.now() - c0) / 1000;
    p.workflows.engine.start();
    const deadline = firesAt + windowMs + 60_000;
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const left = await db.selectFrom('workflow_runs').select((eb) => eb.fn.countAll<number>().as('n')).where('workflow_id', '=', timed.json().id).where('status', '!=', 'completed').executeTakeFirstOrThrow();
      if (Number(left.n) === 0 || Date.now() > deadline) break;
    }
    await p.workflows.engine.stop();
    const steps = await db
      .selectFrom('workflow_steps')
      .innerJoin('workflow_runs', 'workflow_runs.id', 'workflow_steps.run_id')
      .select(['workflow_steps.finished_at', 'workflow_runs.context'])
      .where('workflow_runs.workflow_id', '=', timed.json().id)
      .where('workflow_steps.step_id', '=', 'nap')
      .execute();
    const lateness = steps
      .map((s) => ({ at: s.finished_at, data: (JSON.parse(s.context) as { data: { at: string; label: string } }).data }))
      .filter((s) => s.at !== null && s.data.label === label)
      .map((s) => Number(s.at) - Date.parse(s.data.at))
      .sort((a, b) => a - b);
    return { createSeconds, lateness };
  };
  const steady = await timerRun('steady', STEADY_S * 1000);
  const burst = await timerRun('burst', 2_000);
  await app.close();
  await p.close();
  rmSync(dir, { recursive: true, force: true });

  const rows = [
    `| events accepted per second (POST /v1/events, ${CONCURRENCY} in flight, each starting one run) | ${(EVENTS / apiSeconds).toFixed(0)} | ${EVENTS} events; latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms |`,
    `| new runs taken to their first step per second (engine) | ${(EVENTS / engineSeconds).toFixed(0)} | claimed 500 at a time (one UPDATE … RETURNING), step records group-committed |`,
    `| runs waiting at once | ${WAITING} | created in ${steady.createSeconds.toFixed(1)} s, then again ${burst.createSeconds.toFixed(1)} s |`,
    `| timer lateness p50 / p99 / max, due times spread over ${STEADY_S} s (${Math.round(WAITING / STEADY_S)} due a second) | ${percentile(steady.lateness, 50).toFixed(0)} / ${percentile(steady.lateness, 99).toFixed(0)} / ${(steady.lateness.at(-1) ?? NaN).toFixed(0)} ms | ${steady.lateness.length} of ${WAITING} fired; lateness = when the wait step finished − its due time |`,
    `| timer lateness p50 / p99 / max, all due within 2 s (a burst: ${Math.round(WAITING / 2)} due a second) | ${percentile(burst.lateness, 50).toFixed(0)} / ${percentile(burst.lateness, 99).toFixed(0)} / ${(burst.lateness.at(-1) ?? NaN).toFixed(0)} ms | ${burst.lateness.length} of ${WAITING} fired |`,
  ];
  const body = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${machine()}, ${dialect}, in one process (\`node --import tsx bench/workflows.ts ${EVENTS} ${WAITING} ${STEADY_S}\`); ${loadLine(load0)}.`,
    '',
    '| what | figure | notes |',
    '|---|---|---|',
    ...rows,
    '',
    NOTE,
  ].join('\n');
  console.log(body);
  if (!process.env.BENCH_NO_WRITE) writeSection(`Workflows (${dialect})`, body);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
