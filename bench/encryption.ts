// What encryption at rest costs the send path (issue 9), measured so that a loaded machine does
// not blur it: how many values are sealed and opened per message end to end (API → simulator →
// receipt → one webhook endpoint), counted by the sealing plugin, times what one seal and one
// open cost on this machine. `node --import tsx bench/encryption.ts [messages]`.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform } from '../src/platform.ts';
import { Keyring } from '../src/security/crypto.ts';
import { machine, writeSection } from './lib.ts';

const N = Number(process.argv[2] ?? 2000);

/** CPU time (not wall time: the machine is shared) of one call, in µs. */
function perOp(fn: () => void, n = 20_000): number {
  for (let i = 0; i < 1000; i++) fn();
  const t = process.cpuUsage();
  for (let i = 0; i < n; i++) fn();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / n;
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-enc-'));
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', () => r()));
  const port = (receiver.address() as AddressInfo).port;
  const config = loadConfig({}, { DATABASE_URL: join(dir, 'bench.db'), LOG_LEVEL: 'silent', SWITCHBOARD_ENCRYPTION_KEY: '7f'.repeat(32), SWITCHBOARD_ALLOW_PRIVATE_URLS: true, SWITCHBOARD_SIMULATOR_RECEIPT_MS: 0, SWITCHBOARD_POLL_MS: 20 });
  const p = await createPlatform(config, { logger: createLogger('silent'), processMetrics: false });
  const app = await buildApp(p);
  const { id: accountId } = await p.accounts.ensureDefaultAccount('Bench');
  const key = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'test' })).secret;
  const req = (method: 'GET' | 'POST', url: string, body?: unknown) =>
    app.inject({ method, url, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: body === undefined ? undefined : JSON.stringify(body) });
  await req('POST', '/v1/webhooks', { url: `http://127.0.0.1:${port}/hook` });
  const start = { ...p.sealing.stats };
  for (let i = 0; i < N; i += 100) {
    const messages = Array.from({ length: Math.min(100, N - i) }, (_, j) => ({ to: `+1202555${String(100 + ((i + j) % 10)).padStart(4, '0')}`, body: `Your appointment is tomorrow at 10:${String((i + j) % 60).padStart(2, '0')}.` }));
    await req('POST', '/v1/messages/batch', { messages });
  }
  for (let i = 0; i < 200; i++) {
    const n = await p.runDue();
    if (n === 0) {
      const pending = await p.storage.db.selectFrom('messages').select((eb) => eb.fn.countAll<number>().as('n')).where('status', '!=', 'delivered').executeTakeFirstOrThrow();
      if (Number(pending.n) === 0) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const sealed = (p.sealing.stats.sealed - start.sealed) / N;
  const opened = (p.sealing.stats.opened - start.opened) / N;
  await app.close();
  await p.close();
  receiver.close();
  rmSync(dir, { recursive: true, force: true });

  const keyring = new Keyring(randomBytes(32));
  const body = 'Your appointment is tomorrow at 10:00.';
  const payload = JSON.stringify({ type: 'message.delivered', timestamp: new Date().toISOString(), data: { id: 'msg_01jd8x9q2r5b7c3v4w6y8z0a1b', body, to: '+12025550100', from: '+12025550199', status: 'delivered', metadata: {}, x: 'y'.repeat(650) } });
  const sealedBody = keyring.seal(body, 'messages.body');
  const sealedPayload = keyring.seal(payload, 'outbox.payload');
  const costs = {
    sealShort: perOp(() => keyring.seal(body, 'messages.body')),
    openShort: perOp(() => keyring.tryOpen(sealedBody, ['messages.body'])),
    sealLong: perOp(() => keyring.seal(payload, 'outbox.payload')),
    openLong: perOp(() => keyring.tryOpen(sealedPayload, ['outbox.payload'])),
  };
  // Most sealed values are short (bodies, events); three per message are ~1 KB payloads.
  const perMessageUs = (sealed - 3) * costs.sealShort + 3 * costs.sealLong + (opened - 3) * costs.openShort + 3 * costs.openLong;
  const rows = [
    `| values sealed per message, end to end | ${sealed.toFixed(1)} | the body, ${'~'}4 events, 3 outbox payloads, 3 webhook attempts, the simulator's receipt |`,
    `| values opened per message, end to end | ${opened.toFixed(1)} | the claim, receipts, the webhook worker's claims and fan-out |`,
    `| one seal / one open, a 38-character body | ${costs.sealShort.toFixed(1)} µs / ${costs.openShort.toFixed(1)} µs | AES-256-GCM in Node's crypto, a pooled IV |`,
    `| one seal / one open, a ${payload.length}-byte webhook payload | ${costs.sealLong.toFixed(1)} µs / ${costs.openLong.toFixed(1)} µs | |`,
    `| CPU per message for encryption, end to end | about ${perMessageUs.toFixed(0)} µs | the counts times the costs above |`,
  ];
  const table = ['| measure | result | detail |', '|---|---|---|', ...rows].join('\n');
  console.log(table);
  writeSection(
    'Encryption at rest (bench/encryption.ts)',
    `Machine: ${machine()}. ${N} messages through the API (batches of 100), the simulator and one webhook endpoint, in one process; counts from the sealing plugin, costs as CPU time (process.cpuUsage) over 20,000 operations, so that other work on the machine does not inflate them. Run: ${new Date().toISOString().slice(0, 16)}Z, load average ${(await import('node:os')).loadavg()[0].toFixed(1)} at the end.\n\n${table}`,
  );
}

await main();
