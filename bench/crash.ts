// The crash test: under load, the server process is killed with SIGKILL and restarted on the same
// SQLite file and port, twice; every message answered 202 must then reach a final status. Run
// once through the simulator (test mode) and once through SMPP to a local SMSC (live mode).
// Counts lost (accepted, then missing or never final) and submitted twice (the simulator's
// `simulator_messages.submits`; the SMSC's own count of messages it accepted more than once).
// Exits non-zero when anything is lost. BENCH_SECONDS (default 30) is the load time of each run;
// the kills fall at a third and two thirds of it.
import Sqlite from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, FINAL_STATUSES, drain, freePort, loadLine, machine, recipient, routeToSmsc, runLoad, sleep, startServer, startSmsc, statusLine, writeSection, type ServerProcess, type SmscProcess } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const CONNECTIONS = 50;
const ENCRYPTION_KEY = '7f'.repeat(32);
const FINAL = FINAL_STATUSES.map((s) => `'${s}'`).join(',');

interface Outcome {
  route: string;
  accepted: number;
  answers: string;
  firstStart: number;
  restartSeconds: number[];
  /** Messages in the database (202'd or cut off by a kill after their commit) still not final. */
  dbNotFinal: number;
  final: Record<string, number>;
  missing: number;
  notFinal: number;
  twice: number;
  drained: number;
}

async function crashRun(route: 'simulator' | 'smpp'): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-crash-'));
  const dbPath = join(dir, 'crash.db');
  const env = { DATABASE_URL: dbPath, SWITCHBOARD_ENCRYPTION_KEY: ENCRYPTION_KEY, SWITCHBOARD_SIMULATOR_RECEIPT_MS: '50' };
  const port = await freePort();
  let smsc: SmscProcess | null = null;
  let server: ServerProcess | null = null;
  let client: Client | null = null;
  try {
    const started = Date.now();
    server = await startServer(env, [], { port });
    const firstStart = (Date.now() - started) / 1000;
    const key = route === 'smpp' ? server.liveKey : server.testKey;
    client = new Client(port, key, CONNECTIONS);
    if (route === 'smpp') {
      smsc = await startSmsc({ receiptDelayMs: 20, receiptWindow: 100 });
      await routeToSmsc(client, smsc.port, { binds: 1, window: 100 });
    }

    // Kill and restart twice while the load runs; the load keeps going through the outages.
    let stop = false;
    const tag = Date.now().toString(36);
    const loading = runLoad(client, { seconds: SECONDS * 3, concurrency: CONNECTIONS, stop: () => stop, body: (i) => ({ to: recipient(i), body: `Crash ${tag} ${i}` }) });
    const restartSeconds: number[] = [];
    for (let k = 0; k < 2; k++) {
      await sleep((SECONDS * 1000) / 3);
      const dead = server;
      await new Promise<void>((resolve) => {
        dead.child.once('exit', () => resolve());
        dead.child.kill('SIGKILL');
      });
      const t = Date.now();
      server = await startServer(env, [], { port });
      restartSeconds.push((Date.now() - t) / 1000);
    }
    await sleep((SECONDS * 1000) / 3);
    stop = true;
    const load = await loading;

    // Drain, bounded: leases of the killed processes expire (15 s) and their messages are retried.
    const db = new Sqlite(dbPath, { readonly: true, fileMustExist: true });
    const count = db.prepare<[], { total: number; final: number }>(`select count(*) as total, coalesce(sum(case when status in (${FINAL}) then 1 else 0 end), 0) as final from messages where direction = 'outbound'`);
    const drained = await drain(() => count.get()!, { maxSeconds: 300, stallSeconds: 120 });
    const left = count.get()!;

    const statusOf = db.prepare<[string], { status: string }>('select status from messages where id = ?');
    const final: Record<string, number> = {};
    let missing = 0;
    let notFinal = 0;
    for (const id of load.accepted) {
      const row = statusOf.get(id);
      if (!row) missing++;
      else if (!FINAL_STATUSES.includes(row.status)) notFinal++;
      else final[row.status] = (final[row.status] ?? 0) + 1;
    }
    const twice = route === 'smpp' ? (await smsc!.stats()).duplicated : db.prepare<[], { n: number }>('select count(*) as n from simulator_messages where submits > 1').get()!.n;
    db.close();
    return { route, accepted: load.accepted.length, answers: statusLine(load.statuses), firstStart, restartSeconds, dbNotFinal: left.total - left.final, final, missing, notFinal, twice, drained };
  } finally {
    client?.close();
    await server?.stop();
    await smsc?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  const loadAtStart = loadavg()[0];
  const only = process.env.BENCH_CRASH_ROUTE;
  const outcomes: Outcome[] = [];
  for (const route of ['simulator', 'smpp'] as const) if (!only || only === route) outcomes.push(await crashRun(route));
  const rows = outcomes.map(
    (o) =>
      `| ${o.route === 'smpp' ? 'SMPP to a local SMSC (live mode)' : 'simulator (test mode)'} | ${o.accepted} | ${Object.entries(o.final).map(([s, n]) => `${s} ${n}`).join(', ')} | **${o.missing + o.notFinal}** (${o.missing} missing, ${o.notFinal} not final) | ${o.twice} | ${o.dbNotFinal} | ${o.firstStart.toFixed(1)} s; restarts ${o.restartSeconds.map((s) => s.toFixed(1)).join(' s, ')} s | ${o.drained.toFixed(1)} s | ${o.answers} |`,
  );
  const table = ['| route | accepted (202) | final statuses | lost | submitted twice | not final in the database | first start; restarts (until /healthz answers) | drain | answers during the run |', '|---|---|---|---|---|---|---|---|---|', ...rows].join('\n');
  console.log(table);
  const lost = outcomes.reduce((a, o) => a + o.missing + o.notFinal, 0);
  writeSection(
    'Crash test (bench/crash.ts)',
    `Machine: ${machine()}. Run: ${new Date().toISOString().slice(0, 16)}Z, ${loadLine(loadAtStart)}. For each route: one server process (\`switchboard start\`, SQLite, WAL, synchronous=NORMAL) under single-message load from 50 connections for ${SECONDS} s; at a third and at two thirds of it the process is killed with SIGKILL and started again on the same database file and port. Only answers with 202 count as accepted; requests cut by the kill (connection failed) may or may not have been committed and are not counted. After the load, a bounded drain (at most 5 minutes); then every accepted id is looked up. *Not final in the database* also counts messages committed by a request the kill cut off before its answer. *Submitted twice*: the simulator's \`submits\` counter, or the SMSC's count of messages (unique texts) it accepted more than once. The simulator keeps its submits in the same database file as the messages, so a write the kill undoes is undone on both sides; the SMSC is a separate process and counts what a carrier would see: a message whose submit_sm the SMSC accepted before the kill, but whose outcome the killed process had not yet committed, is in doubt and is sent again after the restart (INVARIANTS: a possible duplicate, never a loss). ${lost === 0 ? 'Result: nothing lost.' : `Result: **${lost} lost** — the test fails.`}\n\n${table}`,
  );
  if (lost > 0) process.exitCode = 1;
}

await main();
