// Webhook benchmark (not a test): throughput to a local receiver in events/s, and the outbox lag
// under load. Run: node --import tsx bench/webhooks.ts [messages]   (default 2000 messages)
//
// The receiver is a separate process (node:http on 127.0.0.1) that verifies every signature with
// the `standardwebhooks` package, as a customer's would. Two phases, each on a fresh database:
//   1. live load    — all workers running; messages are sent through the API and their events
//                     (queued, sent, delivered) flow to the receiver as they happen. Measures
//                     end-to-end events/s and samples the lag gauges every 100 ms.
//   2. backlog drain — the messages are sent and delivered with the webhook worker stopped, so
//                     the outbox holds every event; then the worker starts. Measures how fast the
//                     webhook path alone (fan-out, claim, sign, POST, record) empties it.
// The results replace the "Webhooks" section of BENCHMARKS.md.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Webhook } from 'standardwebhooks';

interface Stats {
  requests: number;
  distinct: number;
  badSignatures: number;
  lagMs: number[];
}

function ask<T>(child: ChildProcess, msg: object, key: string): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (key in m) {
        child.off('message', on);
        resolve(m[key] as T);
      }
    };
    child.on('message', on);
    child.send(msg);
  });
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const { loadConfig } = await import('../src/config.ts');
  const { createPlatform } = await import('../src/platform.ts');
  const { buildApp } = await import('../src/http/app.ts');
  const { createLogger } = await import('../src/logger.ts');

  const messages = Number(process.argv[2] ?? 2000);
  const loadAtStart = loadavg()[0];
  const receiver = fork(fileURLToPath(import.meta.url), ['--receiver'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => receiver.once('message', (m: { port: number }) => resolve(m.port)));
  const url = `http://127.0.0.1:${port}/hook`;

  async function phase(kind: 'live' | 'drain') {
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
    const config = loadConfig({}, { LOG_LEVEL: 'silent', DATABASE_URL: join(dir, 'bench.db'), SWITCHBOARD_ALLOW_PRIVATE_URLS: true, SWITCHBOARD_SIMULATOR_RECEIPT_MS: 50 });
    const p = await createPlatform(config, { logger: createLogger('silent'), processMetrics: false });
    const app = await buildApp(p);
    const { id: accountId } = await p.accounts.ensureDefaultAccount('Bench');
    const key = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'test' })).secret;
    const call = async (method: 'POST' | 'GET', path: string, body?: unknown) =>
      (await app.inject({ method, url: path, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: body === undefined ? undefined : JSON.stringify(body) })).json();
    const ep = await call('POST', '/v1/webhooks', { url });
    await ask(receiver, { secret: ep.secret, reset: true, stats: true }, 'stats');
    const expected = messages * 3;
    const gauge = (name: string) => async () => ((await p.metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0) as number;
    const outboxLag = gauge('switchboard_webhook_outbox_lag_seconds');
    const deliveryLag = gauge('switchboard_webhook_delivery_lag_seconds');

    if (kind === 'live') await p.startWorkers();
    else {
      await p.connectors.startAll();
      p.dispatcher.start();
    }
    const sendStarted = Date.now();
    for (let i = 0; i < messages; i += 500) {
      const batch = Array.from({ length: Math.min(500, messages - i) }, (_, j) => ({ to: `+1 415 555 ${String(2000 + ((i + j) % 8000)).padStart(4, '0')}`, body: `bench ${i + j}` }));
      await call('POST', '/v1/messages/batch', { messages: batch });
    }
    const sendMs = Date.now() - sendStarted;
    if (kind === 'drain') {
      // Wait until every message is delivered: the outbox then holds all the events.
      for (let i = 0; i < 6000; i++) {
        const left = await p.storage.db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '!=', 'delivered').executeTakeFirstOrThrow();
        if (Number(left.n) === 0) break;
        await sleep(100);
      }
    }
    const started = Date.now();
    if (kind === 'drain') p.webhooks.worker.start();
    let maxOutboxLag = 0;
    let maxDeliveryLag = 0;
    let stats: Stats = { requests: 0, distinct: 0, badSignatures: 0, lagMs: [] };
    const deadline = Date.now() + 10 * 60_000;
    while (Date.now() < deadline) {
      maxOutboxLag = Math.max(maxOutboxLag, await outboxLag());
      maxDeliveryLag = Math.max(maxDeliveryLag, await deliveryLag());
      stats = await ask<Stats>(receiver, { stats: true }, 'stats');
      if (stats.distinct >= expected) break;
      await sleep(100);
    }
    const seconds = (Date.now() - (kind === 'live' ? sendStarted : started)) / 1000;
    await app.close();
    await p.close();
    rmSync(dir, { recursive: true, force: true });
    return { kind, messages, expected, sendMs, seconds, stats, maxOutboxLag, maxDeliveryLag };
  }

  let live, drain;
  try {
    live = await phase('live');
    drain = await phase('drain');
  } finally {
    receiver.kill();
  }

  const line = (r: typeof live) =>
    `| ${r.kind === 'live' ? 'live load (API → dispatcher → simulator → webhooks)' : 'backlog drain (webhook worker alone)'} | ${r.messages} | ${r.stats.distinct}/${r.expected} | ${(r.stats.distinct / r.seconds).toFixed(0)} | ${r.seconds.toFixed(1)} | ${pct(r.stats.lagMs, 50)} / ${pct(r.stats.lagMs, 95)} / ${pct(r.stats.lagMs, 100)} | ${r.maxOutboxLag.toFixed(1)} | ${r.maxDeliveryLag.toFixed(1)} | ${r.stats.requests - r.stats.distinct} | ${r.stats.badSignatures} |`;
  const section = `<!-- webhooks:begin -->
## Webhooks

\`node --import tsx bench/webhooks.ts ${messages}\` — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GB, SQLite (WAL, synchronous=NORMAL), one endpoint, the receiver a separate local process verifying every signature with \`standardwebhooks\`. Each message makes 3 events (queued, sent, delivered). Load average when it started: ${loadAtStart.toFixed(1)} (the machine was shared with other jobs; on an idle one expect more).

| phase | messages | events received | events/s | seconds | event → receiver latency p50 / p95 / max (ms) | max outbox lag (s) | max delivery lag (s) | duplicates | bad signatures |
|---|---|---|---|---|---|---|---|---|---|
${line(live)}
${line(drain)}

- *events/s*: distinct events received ÷ time (live: from the first API call; drain: from the worker's start).
- *outbox lag*: \`switchboard_webhook_outbox_lag_seconds\`, sampled every 100 ms — the oldest event not yet fanned out.
- *delivery lag*: \`switchboard_webhook_delivery_lag_seconds\` — the oldest event with a delivery still pending.
- One endpoint is limited to 16 requests in flight (the per-target cap that keeps a slow receiver from taking every slot); several endpoints share 128.
<!-- webhooks:end -->`;
  console.log(section);
  const file = join(fileURLToPath(new URL('..', import.meta.url)), 'BENCHMARKS.md');
  let text = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n\nNumbers from the scripts under `bench/`, with the machine they ran on. They are measurements, not tests: nothing fails if they get worse, but a change that makes them much worse should say why.\n';
  if (text.includes('<!-- webhooks:begin -->')) text = text.replace(/<!-- webhooks:begin -->[\s\S]*<!-- webhooks:end -->/, section);
  else text = `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, text);
}

function runReceiver() {
  let secret = '';
  const seen = new Set<string>();
  const stats: Stats = { requests: 0, distinct: 0, badSignatures: 0, lagMs: [] };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      stats.requests++;
      try {
        const body = new Webhook(secret).verify(raw, req.headers as Record<string, string>) as { timestamp: string };
        const id = String(req.headers['webhook-id']);
        if (!seen.has(id)) {
          seen.add(id);
          stats.distinct++;
          stats.lagMs.push(Date.now() - Date.parse(body.timestamp));
        }
      } catch {
        stats.badSignatures++;
      }
      res.writeHead(204).end();
    });
  });
  server.keepAliveTimeout = 5000;
  server.listen(0, '127.0.0.1', () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on('message', (m: { secret?: string; stats?: boolean; reset?: boolean; exit?: boolean }) => {
    if (m.secret) secret = m.secret;
    if (m.reset) {
      seen.clear();
      Object.assign(stats, { requests: 0, distinct: 0, badSignatures: 0, lagMs: [] });
    }
    if (m.stats) process.send!({ stats: { ...stats, lagMs: m.stats ? stats.lagMs : [] } });
    if (m.exit) server.close(() => process.exit(0));
  });
}


if (process.argv[2] === '--receiver') runReceiver();
else await main();
