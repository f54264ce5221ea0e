// The load generator's own ceiling: how many requests/s bench/lib.ts's Client drives from one
// process, so that a figure near it in another section is read as "bounded by the client", not
// by the server. Two servers, each a separate process on 127.0.0.1:
//   - a canned responder (a net server answering every request with a fixed 200, no parsing
//     beyond finding the end of each request): the client alone is the bottleneck there;
//   - `switchboard start`, GET /healthz: Fastify's floor for a request with no work.
// For comparison, the same loops through node:http with a keep-alive Agent (the old client).
import { spawn } from 'node:child_process';
import http from 'node:http';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Client, loadLine, machine, sleep, startServer, track, writeSection } from './lib.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);

if (process.argv[2] === '--canned') {
  // Answers each request (headers only: GETs) with the same bytes /healthz would send.
  const answer = Buffer.from('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\nconnection: keep-alive\r\n\r\n{"status":"ok"}');
  const server = createServer((s) => {
    let tail = '';
    s.on('data', (d) => {
      const text = tail + d.toString('latin1');
      let at = 0;
      let n = 0;
      for (;;) {
        const i = text.indexOf('\r\n\r\n', at);
        if (i < 0) break;
        n++;
        at = i + 4;
      }
      tail = text.slice(at);
      if (n) s.write(n === 1 ? answer : Buffer.concat(Array(n).fill(answer)));
    });
    s.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => console.log(`port ${(server.address() as { port: number }).port}`));
} else {
  await main();
}

type Get = () => Promise<unknown>;

async function measure(get: Get, concurrency: number): Promise<number> {
  let done = 0;
  const until = performance.now() + SECONDS * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < until) {
        await get();
        done++;
      }
    }),
  );
  return done / ((performance.now() - t0) / 1000);
}

function nodeHttpGet(port: number, agent: http.Agent): Get {
  return () =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
}

async function main() {
  const loadAtStart = loadavg()[0];
  const canned = track(spawn(process.execPath, ['--import', 'tsx', import.meta.filename, '--canned'], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const cannedPort = await new Promise<number>((resolve) => canned.stdout!.once('data', (d) => resolve(Number(/port (\d+)/.exec(String(d))![1]))));
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
  const server = await startServer({ DATABASE_URL: join(dir, 'bench.db') });
  const rows: string[] = [];
  try {
    for (const [name, port] of [
      ['canned responder', cannedPort],
      ['switchboard GET /healthz', server.port],
    ] as const) {
      for (const [conns, depth] of [
        [50, 1],
        [8, 16],
      ]) {
        const c = new Client(port, 'x', conns, depth);
        await measure(() => c.request('GET', '/healthz'), 200); // warm up the sockets and the JIT
        const rate = await measure(() => c.request('GET', '/healthz'), conns * depth);
        c.close();
        rows.push(`| ${name} | bench/lib.ts Client, ${conns} connections × pipeline ${depth} | ${rate.toFixed(0)} req/s |`);
      }
      const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
      const rate = await measure(nodeHttpGet(port, agent), 50);
      agent.destroy();
      rows.push(`| ${name} | node:http keep-alive Agent, 50 connections | ${rate.toFixed(0)} req/s |`);
      await sleep(200);
    }
    const table = ['| server | client | rate |', '|---|---|---|', ...rows].join('\n');
    console.log(table);
    writeSection(
      'Load generator ceiling (bench/load-client.ts)',
      `Machine: ${machine()}. ${SECONDS} s per row, client and server in separate processes on 127.0.0.1, ${loadLine(loadAtStart)}. Run: ${new Date().toISOString().slice(0, 16)}Z. The canned responder does almost no work, so its rows are what one client process can drive; a figure in another section close to them is bounded by the load generator, not by Switchboard.\n\n${table}`,
    );
  } finally {
    await server.stop();
    canned.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
