// Benchmark: a 100,000-recipient campaign (BENCH_RECIPIENTS to change it) (a CSV audience) on the simulator at an unlimited rate,
// on a real SQLite file, with every worker running in this process. Measures the upload, the
// time until every recipient is released (rendered, checked, accepted), the time until the
// campaign completes, and the latency of another account's single sends while it runs.
// Checks that every recipient got exactly one message. Bounded: gives up after BENCH_TIMEOUT_S.
//   BENCH_RECIPIENTS=5000 node --import tsx bench/campaign.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform } from '../src/platform.ts';
import { machine, percentile, writeSection } from './lib.ts';

const recipients = Number(process.env.BENCH_RECIPIENTS ?? 100_000);
const timeoutS = Number(process.env.BENCH_TIMEOUT_S ?? 3600);
const dir = mkdtempSync(join(tmpdir(), 'switchboard-bench-'));
const p = await createPlatform(
  loadConfig({}, { DATABASE_URL: join(dir, 'bench.db'), LOG_LEVEL: 'warn', SWITCHBOARD_SIMULATOR_RECEIPT_MS: 50, SWITCHBOARD_POLL_MS: 50, SWITCHBOARD_PUBLIC_URL: 'https://sb.example.com' }),
  { logger: createLogger('warn'), processMetrics: false },
);
const app = await buildApp(p);
await app.ready();
await p.startWorkers();
const { id: accountId } = await p.accounts.ensureDefaultAccount('Bench');
const key = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'test' })).secret;
const other = await p.accounts.create('Other account');
const otherKey = (await p.credentials.createKey(other.id, { scopes: ['admin'], mode: 'test' })).secret;
const call = (token: string, method: 'GET' | 'POST', url: string, body?: unknown) =>
  app.inject({ method, url, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, payload: body ? JSON.stringify(body) : undefined });

const lines = ['phone,name'];
const areas = ['202', '312', '415', '617', '713'];
for (let i = 0; i < recipients; i++) lines.push(`+1${areas[i % 5]}${String(2000000 + i).slice(-7)},Person ${i}`);
const csv = lines.join('\n');

const t0 = performance.now();
const created = await call(key, 'POST', '/v1/campaigns', { name: 'bench', audience: { csv }, body: 'Hi {{ name }}, our sale starts now: https://shop.example.com/sale' });
if (created.statusCode !== 201) throw new Error(`create: ${created.statusCode} ${created.body.slice(0, 300)}`);
const campaignId = created.json().id as string;
const createS = (performance.now() - t0) / 1000;
const t1 = performance.now();
await call(key, 'POST', `/v1/campaigns/${campaignId}/start`);

// Another account keeps sending single messages while the campaign runs.
const latencies: number[] = [];
let probing = true;
const probe = (async () => {
  let i = 0;
  while (probing) {
    const s = performance.now();
    const r = await call(otherKey, 'POST', '/v1/messages', { to: `+1415${String(3000000 + i++)}`, body: 'unrelated' });
    if (r.statusCode === 202) latencies.push(performance.now() - s);
    await new Promise((r) => setTimeout(r, 250));
  }
})();

let releasedS: number | null = null;
let status = '';
let stats: Record<string, number> = {};
const deadline = Date.now() + timeoutS * 1000;
while (Date.now() < deadline) {
  await new Promise((r) => setTimeout(r, 1000));
  const c = (await call(key, 'GET', `/v1/campaigns/${campaignId}`)).json();
  status = c.status;
  stats = c.stats;
  if (releasedS === null) {
    const pending = await p.storage.db.selectFrom('campaign_recipients').select('seq').where('campaign_id', '=', campaignId).where('status', '=', 'pending').limit(1).executeTakeFirst();
    if (!pending) releasedS = (performance.now() - t1) / 1000;
  }
  process.stderr.write(`\r${status} ${JSON.stringify(stats)}   `);
  if (status === 'completed') break;
}
const completeS = (performance.now() - t1) / 1000;
probing = false;
await probe;
process.stderr.write('\n');

const messages = await p.storage.db
  .selectFrom('campaign_recipients')
  .innerJoin('messages', 'messages.id', 'campaign_recipients.message_id')
  .select([(eb) => eb.fn.countAll<number>().as('n'), (eb) => eb.fn.count<number>('messages.to_addr').distinct().as('distinct_to')])
  .where('campaign_id', '=', campaignId)
  .executeTakeFirstOrThrow();
const sorted = latencies.sort((a, b) => a - b);
const result = {
  recipients,
  status,
  create_seconds: Math.round(createS * 10) / 10,
  released_seconds: releasedS === null ? null : Math.round(releasedS * 10) / 10,
  complete_seconds: Math.round(completeS * 10) / 10,
  messages: Number(messages.n),
  distinct_recipients: Number(messages.distinct_to),
  delivered: stats.delivered,
  other_account_p50_ms: Math.round(percentile(sorted, 50)),
  other_account_p99_ms: Math.round(percentile(sorted, 99)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
const ok = status === 'completed' && result.messages === recipients && result.distinct_recipients === recipients;

writeSection(
  'Campaign on the simulator (issue 7)',
  `\`node --import tsx bench/campaign.ts\` (BENCH_RECIPIENTS sets the size) — a campaign with a CSV audience of
${recipients.toLocaleString('en-US')} recipients and a Liquid body with a tracked link, on the simulator (50 ms receipts) at an
unlimited rate, with the API, dispatcher, simulator and campaign runner in one process on a SQLite file.
Machine: ${machine()}. Run: ${new Date().toISOString().slice(0, 10)}${ok ? '' : ` — **did not complete within ${timeoutS} s**`}.

| measure | result |
|---|---|
| upload: POST /v1/campaigns with the CSV (${(csv.length / 1e6).toFixed(1)} MB) | ${result.create_seconds} s |
| every recipient released (rendered, consent/suppression/routing checked, accepted) | ${result.released_seconds ?? 'not reached'} s after start |
| campaign completed (every message sent by the simulator) | ${result.complete_seconds} s after start (${Math.round(recipients / completeS)} recipients/s) |
| messages / distinct recipients / delivered | ${result.messages} / ${result.distinct_recipients} / ${result.delivered} |
| another account's POST /v1/messages meanwhile (one every 250 ms) | p50 ${result.other_account_p50_ms} ms, p99 ${result.other_account_p99_ms} ms (${sorted.length} sends) |

The runner keeps at most 2,000 of a campaign's messages waiting in the queue and releases 1,000 per
step, so completion is paced by the dispatcher's throughput, not by the release.`,
);

await app.close();
await p.close();
rmSync(dir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
