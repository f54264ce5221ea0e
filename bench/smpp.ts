// End to end through SMPP: POST /v1/messages → dispatcher → SMPP connector (window 100, no
// throughput cap) → a local SMSC → delivery receipt → status applied. Three processes on
// 127.0.0.1: the SMSC (test/smsc.ts), the server (`switchboard start`, SQLite), and this one,
// which drives single-message POSTs for BENCH_SECONDS (default 60; the issue-6 target is 5,000
// messages/s sustained for a minute), then waits (bounded) for every accepted message to reach
// a final status. Reports accepted, delivered, lost, duplicated (the SMSC's own count of
// messages it accepted more than once), end-to-end and sustained rates, and accept → delivered
// latency read from the database.
import Sqlite from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, FINAL_STATUSES, cpuSeconds, drain, loadLine, machine, percentile, recipient, routeToSmsc, runLoad, sleep, startServer, startSmsc, statusLine, sustained, writeSection } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const BINDS = Number(process.env.BENCH_SMPP_BINDS ?? 1);
const WINDOW = 100;
const ENCRYPTION_KEY = '7f'.repeat(32);

async function main() {
  const loadAtStart = loadavg()[0];
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
  const dbPath = join(dir, 'bench.db');
  const smsc = await startSmsc({ receiptDelayMs: 20, receiptWindow: WINDOW });
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let client: Client | null = null;
  try {
    server = await startServer({ DATABASE_URL: dbPath, SWITCHBOARD_ENCRYPTION_KEY: ENCRYPTION_KEY });
    client = new Client(server.port, server.liveKey, CONNECTIONS);
    const connectorId = await routeToSmsc(client, smsc.port, { binds: BINDS, window: WINDOW });
    const db = new Sqlite(dbPath, { readonly: true, fileMustExist: true });
    const statusOf = db.prepare<[string], { status: string; connector_id: string | null }>('select status, connector_id from messages where id = ?');

    // One message first: proves the path (bind up, route taken, receipt applied) before the load.
    const probe = await client.request('POST', '/v1/messages', { to: recipient(0), body: 'bench: probe' });
    if (probe.status !== 202) throw new Error(`probe refused: ${probe.status} ${probe.body}`);
    const probeId = (JSON.parse(probe.body) as { id: string }).id;
    for (let i = 0; i < 300 && statusOf.get(probeId)?.status !== 'delivered'; i++) await sleep(100);
    const p = statusOf.get(probeId);
    if (p?.status !== 'delivered' || p.connector_id !== connectorId) throw new Error(`the probe message did not go through the SMSC: ${JSON.stringify(p)}\n${server.output().slice(-3000)}`);

    // The load. Each text is unique, so the SMSC can count a message it got twice.
    const tag = Date.now().toString(36);
    const cpu0 = { server: cpuSeconds(server.child.pid), smsc: cpuSeconds(smsc.pid), bench: process.cpuUsage() };
    // The connector's own view of its window, sampled from GET /v1/connectors/{id} on a connection
    // of its own (the SMSC answers at once, so it never sees more than one submit outstanding).
    const probeClient = new Client(server.port, server.liveKey, 1);
    const window = { max: 0, queue: 0, samples: 0 };
    let loading = true;
    const sampling = (async () => {
      while (loading) {
        const r = await probeClient.request('GET', `/v1/connectors/${connectorId}`).catch(() => null);
        const st = r?.status === 200 ? (JSON.parse(r.body) as { state?: { window_in_use?: number; queue_depth?: number } }).state : undefined;
        if (st) {
          window.samples++;
          window.max = Math.max(window.max, st.window_in_use ?? 0);
          window.queue = Math.max(window.queue, st.queue_depth ?? 0);
        }
        await sleep(250);
      }
    })();
    const loadStart = Date.now();
    const load = await runLoad(client, { seconds: SECONDS, concurrency: CONNECTIONS, body: (i) => ({ to: recipient(i), body: `Bench ${tag} ${i}: your code is ${100000 + i}` }) });
    loading = false;
    await sampling;
    probeClient.close();
    const accepted = load.accepted;
    const rssAfterLoad = server.peakRssMb();

    // Drain: every accepted message to a final status, bounded.
    const total = db.prepare<[number], { n: number }>(`select count(*) as n from messages where direction = 'outbound' and created_at >= ?`);
    const final = db.prepare<[number], { n: number }>(`select count(*) as n from messages where direction = 'outbound' and created_at >= ? and status in (${FINAL_STATUSES.map((s) => `'${s}'`).join(',')})`);
    const drained = await drain(() => ({ final: final.get(loadStart)!.n, total: total.get(loadStart)!.n }), { maxSeconds: 300, stallSeconds: 60 });
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpu = { server: cpuSeconds(server.child.pid) - cpu0.server, smsc: cpuSeconds(smsc.pid) - cpu0.smsc, bench: (benchCpu.user + benchCpu.system) / 1e6 };

    // Every accepted id, looked up: delivered, final otherwise, not final, missing.
    const by: Record<string, number> = {};
    let missing = 0;
    for (const id of accepted) {
      const row = statusOf.get(id);
      if (!row) missing++;
      else by[row.status] = (by[row.status] ?? 0) + 1;
    }
    const delivered = by.delivered ?? 0;
    const notFinal = Object.entries(by).filter(([s]) => !FINAL_STATUSES.includes(s)).reduce((a, [, n]) => a + n, 0);
    const stats = await smsc.stats();

    // Rates and latency from the database: accept (created_at) → receipt applied (the delivered event).
    const ids = new Set(accepted);
    const rows = db
      .prepare<[number], { id: string; created_at: number; at: number }>(`select m.id, m.created_at, e.at from messages m join message_events e on e.message_id = m.id and e.status = 'delivered' where m.created_at >= ?`)
      .all(loadStart)
      .filter((r) => ids.has(r.id));
    const latencies = rows.map((r) => r.at - r.created_at).sort((a, b) => a - b);
    // reduce, not Math.min(...): a spread of 300,000 arguments overflows the stack.
    const firstAccept = rows.reduce((a, r) => Math.min(a, r.created_at), Infinity);
    const lastDelivered = rows.reduce((a, r) => Math.max(a, r.at), 0);
    const e2eRate = rows.length / ((lastDelivered - firstAccept) / 1000);
    // Delivered per second within the load window: what the whole path sustains while loaded.
    const perSecond: number[] = Array.from({ length: Math.floor(load.seconds) }, () => 0);
    for (const r of rows) {
      const s = Math.floor((r.at - loadStart) / 1000);
      if (s >= 0 && s < perSecond.length) perSecond[s]++;
    }
    const deliveredInWindow = perSecond.reduce((a, b) => a + b, 0);
    db.close();

    const table = [
      '| measure | result |',
      '|---|---|',
      `| load | ${SECONDS} s, ${CONNECTIONS} connections, single POST /v1/messages (live mode), answers: ${statusLine(load.statuses)} |`,
      `| accepted | ${accepted.length} (${(accepted.length / load.seconds).toFixed(0)}/s; lowest full second ${sustained(load.perSecond)}/s); accept latency p50 ${percentile(load.latencies, 50).toFixed(1)} ms, p99 ${percentile(load.latencies, 99).toFixed(1)} ms |`,
      `| delivered | ${delivered} |`,
      `| lost (accepted, not delivered) | ${accepted.length - delivered}: ${missing} missing, ${notFinal} not final after the drain, ${accepted.length - delivered - missing - notFinal} final but not delivered (${Object.entries(by).filter(([s]) => s !== 'delivered').map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}) |`,
      `| duplicated (the SMSC accepted the same message twice) | ${stats.duplicated} (SMSC: ${stats.submits} submit_sm received, ${stats.accepted} accepted, ${stats.binds} bind${stats.binds > 1 ? 's' : ''} made) |`,
      `| window in use (the connector's state, sampled every 250 ms during the load) | at most ${window.max} of ${WINDOW * BINDS}; submit queue at most ${window.queue} (${window.samples} samples) |`,
      `| end to end, first accept → last receipt applied | ${e2eRate.toFixed(0)} delivered/s (${rows.length} in ${((lastDelivered - firstAccept) / 1000).toFixed(1)} s); drained ${drained.toFixed(1)} s after the load stopped |`,
      `| sustained during the load window | ${(deliveredInWindow / load.seconds).toFixed(0)} delivered/s on average, lowest full second ${sustained(perSecond)}/s |`,
      `| accept → delivered latency | p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms |`,
      `| CPU used, load and drain | server ${cpu.server.toFixed(1)} s (${(delivered / cpu.server).toFixed(0)} messages per CPU-second), SMSC ${cpu.smsc.toFixed(1)} s, load generator ${cpu.bench.toFixed(1)} s (drain polling included) |`,
      `| peak RSS of the server | ${server.peakRssMb().toFixed(0)} MB (${rssAfterLoad.toFixed(0)} MB when the load stopped) |`,
    ].join('\n');
    console.log(table);
    writeSection(
      'End to end through SMPP (bench/smpp.ts)',
      `Machine: ${machine()}. Run: ${new Date().toISOString().slice(0, 16)}Z, ${loadLine(loadAtStart)}. Three processes on 127.0.0.1: the test SMSC (test/smsc.ts: receipts 20 ms after the submit_sm_resp, at most ${WINDOW} receipts awaiting their deliver_sm_resp), the server (\`switchboard start\`, SQLite, WAL, synchronous=NORMAL) with one SMPP connector (${BINDS} transceiver bind${BINDS > 1 ? 's' : ''}, window ${WINDOW}, no throughput cap) routed ahead of the simulator, and the load from this process (bench/lib.ts Client, raw keep-alive sockets). The target (issue 6) is 5,000 messages/s sustained for a minute.\n\n${table}`,
    );
    if (missing > 0) process.exitCode = 1;
  } finally {
    client?.close();
    await server?.stop();
    await smsc.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
