// The API benchmark: a server process on 127.0.0.1 with a fresh SQLite file, driven from this
// (separate) process. Measures single-message accepts at 50 connections, the batch endpoint,
// end-to-end from the API to receipts applied through the simulator, refusal latency for bad
// input, and the server's peak RSS. Every run states accepted, delivered, lost, duplicated.
import Sqlite from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, machine, percentile, recipient, startServer, writeSection } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = 50;

async function main() {
  const loadAtStart = loadavg()[0];
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
  const dbPath = join(dir, 'bench.db');
  const server = await startServer({ DATABASE_URL: dbPath, SWITCHBOARD_SIMULATOR_RECEIPT_MS: '50' });
  const client = new Client(server.port, server.testKey, CONNECTIONS);
  const accepted = new Set<string>();
  const rows: string[] = [];
  try {
    // Warm up.
    for (let i = 0; i < 200; i++) await client.request('POST', '/v1/messages', { to: recipient(i), body: 'warm up' });

    // (1) Single-message accepts at 50 connections.
    const latencies: number[] = [];
    let errors = 0;
    const until = Date.now() + SECONDS * 1000;
    let n = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (Date.now() < until) {
          const i = n++;
          const s = performance.now();
          const r = await client.request('POST', '/v1/messages', { to: recipient(i), body: `Reminder ${i}: your appointment is tomorrow at 10:00.` });
          latencies.push(performance.now() - s);
          if (r.status === 202) accepted.add(JSON.parse(r.body).id);
          else errors++;
        }
      }),
    );
    const singleSecs = (performance.now() - t0) / 1000;
    latencies.sort((a, b) => a - b);
    const singleRate = accepted.size / singleSecs;
    rows.push(`| single POST /v1/messages, ${CONNECTIONS} connections, ${SECONDS} s | ${singleRate.toFixed(0)} accepted/s | p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms; ${accepted.size} accepted, ${errors} errors |`);
    const rssAfterSingle = server.peakRssMb();

    // (2) Batch endpoint: 1,000 messages a request, 4 connections.
    const batchUntil = Date.now() + SECONDS * 1000;
    let batchAccepted = 0;
    let m = 0;
    const tb = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (Date.now() < batchUntil) {
          const messages = Array.from({ length: 1000 }, () => {
            const i = m++;
            return { to: recipient(i), body: `Batch ${i}` };
          });
          const r = await client.request('POST', '/v1/messages/batch', { messages });
          if (r.status !== 200) continue;
          for (const d of JSON.parse(r.body).data) if (d.message) {
            accepted.add(d.message.id);
            batchAccepted++;
          }
        }
      }),
    );
    const batchRate = batchAccepted / ((performance.now() - tb) / 1000);
    rows.push(`| batch POST /v1/messages/batch (1,000 each), 4 connections, ${SECONDS} s | ${batchRate.toFixed(0)} messages/s | ${batchAccepted} accepted |`);

    // (3) End to end: every accepted message to a final status through the simulator.
    const db = new Sqlite(dbPath, { readonly: true, fileMustExist: true });
    const te = performance.now();
    const firstAccepted = db.prepare(`select min(created_at) as t from messages where direction = 'outbound'`).get() as { t: number };
    let final = 0;
    const deadline = Date.now() + 15 * 60_000;
    while (Date.now() < deadline) {
      final = (db.prepare(`select count(*) as n from messages where direction = 'outbound' and status in ('delivered','undelivered','failed','expired','canceled')`).get() as { n: number }).n;
      const total = (db.prepare(`select count(*) as n from messages where direction = 'outbound'`).get() as { n: number }).n;
      if (final >= total) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    const lastDone = db.prepare(`select max(updated_at) as t from messages where direction = 'outbound'`).get() as { t: number };
    const delivered = (db.prepare(`select count(*) as n from messages where direction = 'outbound' and status = 'delivered'`).get() as { n: number }).n;
    const total = (db.prepare(`select count(*) as n from messages where direction = 'outbound'`).get() as { n: number }).n;
    const dupes = (db.prepare(`select count(*) as n from simulator_messages where submits > 1`).get() as { n: number }).n;
    let lost = 0;
    const exists = db.prepare('select status from messages where id = ?');
    for (const id of accepted) if (!exists.get(id)) lost++;
    const e2eSecs = (lastDone.t - firstAccepted.t) / 1000;
    rows.push(`| end to end, API → simulator → receipt applied | ${(delivered / e2eSecs).toFixed(0)} delivered/s over the whole run | ${total} accepted (warm-up included), ${delivered} delivered, ${lost} lost, ${dupes} submitted twice; drained ${((performance.now() - te) / 1000).toFixed(1)} s after the load stopped |`);
    db.close();

    // (4) Refusals: bad input answered over a real socket.
    const bad: Record<string, unknown> = {
      'malformed JSON': '{"to": ',
      'invalid number': { to: '+15550001111', body: 'x' },
      'over 10 segments': { to: recipient(0), body: 'y'.repeat(1600) },
      'unknown channel': { to: recipient(0), body: 'x', channel: 'fax' },
      'wrong type': { to: 12025550100, body: 'x' },
    };
    const refusal: string[] = [];
    for (const [name, body] of Object.entries(bad)) {
      const times: number[] = [];
      for (let i = 0; i < 300; i++) {
        const s = performance.now();
        await client.request('POST', '/v1/messages', body);
        times.push(performance.now() - s);
      }
      times.sort((a, b) => a - b);
      refusal.push(`${name}: p50 ${percentile(times, 50).toFixed(1)} ms, p99 ${percentile(times, 99).toFixed(1)} ms`);
    }
    const big = 'x'.repeat(2 * 1024 * 1024);
    const s = performance.now();
    const r413 = await client.request('POST', '/v1/messages', `{"to":"+12025550100","body":"${big}"}`);
    refusal.push(`2 MB body: ${(performance.now() - s).toFixed(1)} ms (${r413.status})`);
    rows.push(`| refusals of bad input (300 each, one connection) | | ${refusal.join('; ')} |`);
    rows.push(`| peak RSS of the server | ${server.peakRssMb().toFixed(0)} MB | ${rssAfterSingle.toFixed(0)} MB after the single-message phase |`);

    const table = ['| measure | result | detail |', '|---|---|---|', ...rows].join('\n');
    console.log(table);
    writeSection(
      'API on SQLite (bench/api.ts)',
      `Machine: ${machine()}. One server process (\`switchboard start\`, embedded SQLite, WAL, synchronous=NORMAL, the simulator with 50 ms receipts) and the load from a separate process on 127.0.0.1. Run: ${new Date().toISOString().slice(0, 10)}, load average ${loadAtStart.toFixed(1)} at the start (above 0.5, other work shared the cores).\n\n${table}`,
    );
  } finally {
    client.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
