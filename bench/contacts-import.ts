// Benchmark: a 100,000-row contact CSV imported through POST /v1/contacts/import (text/csv) on
// a real SQLite file, then imported again (every row an update). Prints one JSON line per run.
//   node --import tsx bench/contacts-import.ts [rows]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform } from '../src/platform.ts';

const rows = Number(process.argv[2] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
const p = await createPlatform(loadConfig({}, { DATABASE_URL: join(dir, 'bench.db'), LOG_LEVEL: 'silent' }), { logger: createLogger('silent'), processMetrics: false });
const app = await buildApp(p);
await app.ready();
const { id: accountId } = await p.accounts.ensureDefaultAccount('Bench');
const key = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'live' })).secret;

const zones = ['America/New_York', 'America/Chicago', 'America/Denver', 'America/Los_Angeles', ''];
const lines = ['phone,name,time_zone,owner,tags,plan,city'];
for (let i = 0; i < rows; i++) {
  // Real area codes with 555-01YY-style fictional lines spread over many exchanges.
  const area = ['202', '312', '415', '617', '713'][i % 5];
  lines.push(`+1${area}${String(2000000 + i).slice(-7)},Person ${i},${zones[i % 5]},team:${i % 7},customer;wave-${i % 4},p${i % 3},City ${i % 100}`);
}
const csv = `${lines.join('\n')}\n`;

async function run(label: string) {
  const started = performance.now();
  const res = await app.inject({ method: 'POST', url: '/v1/contacts/import', headers: { authorization: `Bearer ${key}`, 'content-type': 'text/csv' }, payload: csv });
  const ms = performance.now() - started;
  if (res.statusCode !== 200) throw new Error(`${label}: ${res.statusCode} ${res.body.slice(0, 300)}`);
  const r = res.json();
  const out = { run: label, rows, bytes: csv.length, seconds: Math.round(ms) / 1000, rows_per_second: Math.round(rows / (ms / 1000)), created: r.created, updated: r.updated, failed: r.failed };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

await run('first import (all new)');
await run('re-import (all updates)');
await app.close();
await p.close();
rmSync(dir, { recursive: true, force: true });
