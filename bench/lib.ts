// Shared pieces of the benchmarks: a server process on 127.0.0.1, a keep-alive HTTP client,
// percentiles, peak RSS, and writing a section of BENCHMARKS.md. Every loop is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import type { SmscStats } from '../test/smsc.ts';

export const ROOT = join(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin', 'switchboard.js');

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Statuses a message never leaves (CONTRACT: forward-only statuses). */
export const FINAL_STATUSES = ['delivered', 'undelivered', 'failed', 'expired', 'canceled'];

// Every process a benchmark started, killed when it exits however it exits, so a failed run
// leaves nothing listening on the machine.
const children = new Set<ChildProcess>();
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  testKey: string;
  liveKey: string;
  output: () => string;
  peakRssMb: () => number;
  stop: () => Promise<void>;
}

/**
 * Starts `switchboard start` on 127.0.0.1. `port` keeps a port across restarts (the crash test);
 * `--role worker` in args serves no HTTP, so readiness is then its "switchboard started" log line.
 */
export async function startServer(env: Record<string, string>, args: string[] = [], opts: { port?: number } = {}): Promise<ServerProcess> {
  const port = opts.port ?? (await freePort());
  const worker = args.includes('worker');
  // BENCH_NODE_ARGS passes flags such as --cpu-prof to the server's node (NODE_OPTIONS refuses them).
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'start', '--port', String(port), ...args], {
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let out = '';
  // Keep the start of the output (the keys, start-up errors) and the tail (why it died), bounded.
  const keep = (d: Buffer) => {
    out += d;
    if (out.length > 200_000) out = out.slice(0, 50_000) + '\n…\n' + out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not start:\n${out}`);
    }
    if (child.exitCode !== null) throw new Error(`server exited:\n${out}`);
    if (worker) {
      if (out.includes('switchboard started')) break;
    } else {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (r.ok) break;
      } catch {
        // not yet
      }
    }
    await sleep(100);
  }
  const testKey = /admin API key \(test mode\): (\S+)/.exec(out)?.[1] ?? '';
  const liveKey = /admin API key \(live mode\): (\S+)/.exec(out)?.[1] ?? '';
  return {
    child,
    port,
    testKey,
    liveKey,
    output: () => out,
    peakRssMb: () => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
        const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
        return kb / 1024;
      } catch {
        return 0;
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}

/**
 * A keep-alive HTTP/1.1 client written over raw sockets, so that the load generator is not the
 * bottleneck: node:http spends most of a core at 10,000 requests/s on parsing and bookkeeping we
 * do not need. It speaks just what the benchmarks use: requests with a JSON (or raw string) body,
 * answers with `content-length` or chunked bodies, `connection: close`. `connections` sockets, each
 * with at most `pipeline` requests written and not yet answered (1 = plain keep-alive, like a
 * browser; more = HTTP pipelining, answered in order by the server).
 */
export class Client {
  private conns: Conn[] = [];
  private waiting: Pending[] = [];
  private closed = false;
  constructor(
    private port: number,
    private token: string,
    connections: number,
    private pipeline = 1,
  ) {
    for (let i = 0; i < connections; i++) this.conns.push(new Conn(port, () => this.pump()));
  }

  request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
    if (this.closed) return Promise.reject(new Error('client closed'));
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    let head = `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1:${this.port}\r\nauthorization: Bearer ${this.token}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (payload !== undefined) head += `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(payload)}\r\n`;
    const bytes = head + '\r\n' + (payload ?? '');
    return new Promise((resolve, reject) => {
      this.waiting.push({ bytes, resolve, reject });
      this.pump();
    });
  }

  /** Hands waiting requests to the least busy sockets that have room. */
  private pump() {
    while (this.waiting.length > 0) {
      let best: Conn | null = null;
      for (const c of this.conns) if (c.inFlight() < this.pipeline && (!best || c.inFlight() < best.inFlight())) best = c;
      if (!best) return;
      best.send(this.waiting.shift()!);
    }
  }

  close() {
    this.closed = true;
    for (const w of this.waiting.splice(0)) w.reject(new Error('client closed'));
    for (const c of this.conns) c.destroy();
  }
}

interface Pending {
  bytes: string;
  resolve: (r: { status: number; body: string }) => void;
  reject: (e: Error) => void;
}

/** One keep-alive socket: requests written in order, answers parsed in order. */
class Conn {
  private socket: Socket | null = null;
  private sent: Pending[] = [];
  private buf: Buffer = Buffer.alloc(0);
  constructor(
    private port: number,
    private onFree: () => void,
  ) {}

  inFlight() {
    return this.sent.length;
  }

  send(p: Pending) {
    if (!this.socket) this.open();
    this.sent.push(p);
    this.socket!.write(p.bytes);
  }

  destroy() {
    this.socket?.destroy();
  }

  private open() {
    const s = connect(this.port, '127.0.0.1');
    s.setNoDelay(true);
    this.socket = s;
    this.buf = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.parse();
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.socket !== s) return;
      this.socket = null;
      // Requests written and not answered: the server closed (or died). Never retried here — the
      // caller decides, since a POST may or may not have been committed.
      for (const p of this.sent.splice(0)) p.reject(new Error('connection closed'));
      this.onFree();
    });
  }

  private parse() {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.buf.toString('latin1', 0, end);
      const status = Number(head.slice(9, 12));
      const lower = head.toLowerCase();
      const close = /\r\nconnection: *close/.test(lower);
      const lengthMatch = /\r\ncontent-length: *(\d+)/.exec(lower);
      let body: string;
      let used: number;
      if (lengthMatch) {
        const len = Number(lengthMatch[1]);
        if (this.buf.length < end + 4 + len) return;
        body = this.buf.toString('utf8', end + 4, end + 4 + len);
        used = end + 4 + len;
      } else if (/\r\ntransfer-encoding: *chunked/.test(lower)) {
        const chunks: Buffer[] = [];
        let at = end + 4;
        for (;;) {
          const lineEnd = this.buf.indexOf('\r\n', at);
          if (lineEnd < 0) return;
          const size = parseInt(this.buf.toString('latin1', at, lineEnd), 16);
          if (this.buf.length < lineEnd + 2 + size + 2) return;
          chunks.push(this.buf.subarray(lineEnd + 2, lineEnd + 2 + size));
          at = lineEnd + 2 + size + 2;
          if (size === 0) break;
        }
        body = Buffer.concat(chunks).toString('utf8');
        used = at;
      } else {
        body = '';
        used = end + 4;
      }
      this.buf = this.buf.subarray(used);
      const p = this.sent.shift();
      p?.resolve({ status, body });
      if (close) {
        const s = this.socket;
        this.socket = null;
        s?.destroy();
        for (const q of this.sent.splice(0)) q.reject(new Error('connection closed'));
      }
      this.onFree();
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function machine(): string {
  return `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node.js ${process.version}, ${process.platform}`;
}

/** Replaces (or appends) the section headed `## title` in BENCHMARKS.md. */
export function writeSection(title: string, body: string): void {
  const file = join(ROOT, 'BENCHMARKS.md');
  let text = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmarks\n\nFigures from `npm run bench` (or the single script named in each section), on the machine each section names. Targets are checked here, never by timed unit tests.\n';
  const header = `## ${title}`;
  const start = text.indexOf(`\n${header}\n`);
  const section = `\n${header}\n\n${body.trim()}\n`;
  if (start >= 0) {
    const next = text.indexOf('\n## ', start + header.length + 2);
    text = text.slice(0, start) + section + (next >= 0 ? text.slice(next) : '');
  } else {
    text = text.trimEnd() + '\n' + section;
  }
  writeFileSync(file, text);
}

export interface LoadResult {
  /** Ids of the messages answered 202, in answer order. */
  accepted: string[];
  /** Answers by status; 0 counts requests whose connection failed (refused, reset, closed). */
  statuses: Record<number, number>;
  /** Latency of every answered request, ms, sorted. */
  latencies: number[];
  seconds: number;
  /** Accepted messages in each second of the run. */
  perSecond: number[];
}

/**
 * Drives `concurrency` request loops for `seconds` (or until `stop()` says so). Each loop sends
 * POST `path` with `body(i)` and waits for the answer. A refused or broken connection (the server
 * being killed) is counted and the loop pauses 50 ms instead of spinning.
 */
export async function runLoad(client: Client, opts: { seconds: number; concurrency: number; path?: string; body: (i: number) => unknown; stop?: () => boolean }): Promise<LoadResult> {
  const accepted: string[] = [];
  const statuses: Record<number, number> = {};
  const latencies: number[] = [];
  const perSecond: number[] = [];
  const t0 = performance.now();
  const until = t0 + opts.seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: opts.concurrency }, async () => {
      while (performance.now() < until && !opts.stop?.()) {
        const s = performance.now();
        try {
          const r = await client.request('POST', opts.path ?? '/v1/messages', opts.body(n++));
          const now = performance.now();
          latencies.push(now - s);
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
          if (r.status === 202) {
            // The id is the view's first field; JSON.parse only when it is not.
            const id = /^\{"id":"([^"]+)"/.exec(r.body)?.[1] ?? (JSON.parse(r.body) as { id: string }).id;
            accepted.push(id);
            const sec = Math.floor((now - t0) / 1000);
            perSecond[sec] = (perSecond[sec] ?? 0) + 1;
          } else if (r.status === 429 || r.status >= 500) await sleep(20);
        } catch {
          statuses[0] = (statuses[0] ?? 0) + 1;
          await sleep(50);
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { accepted, statuses, latencies, seconds: (performance.now() - t0) / 1000, perSecond: Array.from(perSecond, (x) => x ?? 0) };
}

/** `202: 1234, 429: 5` — the answers a run got, for the report. */
export function statusLine(statuses: Record<number, number>): string {
  return Object.entries(statuses)
    .map(([k, v]) => `${k === '0' ? 'connection failed' : k}: ${v}`)
    .join(', ');
}

/** The lowest accepted/s over full seconds of the run (the first and last partial seconds dropped). */
export function sustained(perSecond: number[]): number {
  const full = perSecond.slice(1, -1);
  return full.length ? Math.min(...full) : 0;
}

/** Numbers the simulator delivers: +1 NXX 555 0100..0109 across area codes. */
export function recipient(i: number): string {
  const areas = ['202', '212', '213', '305', '312', '415', '503', '617', '702', '713'];
  return `+1${areas[i % areas.length]}55501${String(Math.floor(i / 10) % 10).padStart(2, '0')}`;
}

export function loadLine(atStart: number): string {
  const now = loadavg()[0];
  return `load average ${atStart.toFixed(1)} at the start, ${now.toFixed(1)} at the end${Math.max(atStart, now) > 0.5 ? ' (above 0.5: other work shared the cores, treat the figures as lower bounds)' : ''}`;
}

export interface SmscProcess {
  port: number;
  pid: number | undefined;
  stats: () => Promise<SmscStats>;
  stop: () => Promise<void>;
}

/** test/smsc.ts as its own process (so its CPU is not this one's), asked for its counts over IPC. */
export async function startSmsc(opts: { receiptDelayMs?: number; receiptWindow?: number } = {}): Promise<SmscProcess> {
  const port = await freePort();
  const args = ['--import', 'tsx', join(ROOT, 'test', 'smsc.ts'), '--port', String(port)];
  if (opts.receiptDelayMs !== undefined) args.push('--receipt-delay-ms', String(opts.receiptDelayMs));
  if (opts.receiptWindow !== undefined) args.push('--receipt-window', String(opts.receiptWindow));
  const child = track(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }));
  let out = '';
  child.stdout!.on('data', (d) => (out = (out + d).slice(-10_000)));
  child.stderr!.on('data', (d) => (out = (out + d).slice(-10_000)));
  const deadline = Date.now() + 30_000;
  while (!out.includes('listening')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`SMSC did not start:\n${out}`);
    await sleep(50);
  }
  return {
    port,
    pid: child.pid,
    stats: () =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('SMSC did not answer for its stats')), 30_000);
        child.once('message', (m: { stats: SmscStats }) => {
          clearTimeout(timer);
          resolve(m.stats);
        });
        child.send('stats');
      }),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 5_000).unref();
      }),
  };
}

/**
 * A live-mode SMPP connector to the local SMSC (the test SMSC's default credentials, no throughput
 * cap) and a route to it ahead of the simulator's (priority 1000). Returns the connector id.
 */
export async function routeToSmsc(client: Client, smscPort: number, config: { binds: number; window: number }): Promise<string> {
  const c = await client.request('POST', '/v1/connectors', {
    name: 'bench SMSC',
    type: 'smpp',
    config: { host: '127.0.0.1', port: smscPort, system_id: 'switchboard', password: 'secret1', ...config },
  });
  if (c.status !== 201) throw new Error(`POST /v1/connectors: ${c.status} ${c.body}`);
  const connectorId = (JSON.parse(c.body) as { id: string }).id;
  const r = await client.request('POST', '/v1/routes', { priority: 10, name: 'bench: everything to the SMSC', connector_id: connectorId });
  if (r.status !== 201) throw new Error(`POST /v1/routes: ${r.status} ${r.body}`);
  return connectorId;
}

/**
 * Polls `progress` until every message is final, or nothing has moved for `stallSeconds`, or
 * `maxSeconds` passed. Returns the seconds it waited.
 */
export async function drain(progress: () => Promise<{ final: number; total: number }> | { final: number; total: number }, opts: { maxSeconds: number; stallSeconds: number }): Promise<number> {
  const t0 = Date.now();
  let last = -1;
  let movedAt = Date.now();
  for (;;) {
    const { final, total } = await progress();
    if (final >= total) break;
    if (final !== last) {
      last = final;
      movedAt = Date.now();
    }
    if (Date.now() - movedAt > opts.stallSeconds * 1000 || Date.now() - t0 > opts.maxSeconds * 1000) break;
    await sleep(250);
  }
  return (Date.now() - t0) / 1000;
}

/** CPU seconds (user + system) a process has used so far, from /proc; 0 when it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}
