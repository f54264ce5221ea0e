// `npm test`: every *.test.ts under src/ and test/, with node's test runner through tsx, once
// on SQLite and once on PostgreSQL (Node 20's --test does not expand globs itself).
//
// PostgreSQL comes from SWITCHBOARD_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
// In CI (CI=true) a missing PostgreSQL fails the run; locally it is skipped with one loud line.
// SWITCHBOARD_TEST_DIALECT=sqlite|postgres runs one dialect only. Extra arguments name files.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const files = args.filter((a) => !a.startsWith('-'));
const flags = args.filter((a) => a.startsWith('-'));
if (files.length === 0) {
  for (const dir of ['src', 'test']) {
    for (const f of readdirSync(dir, { recursive: true })) {
      if (String(f).endsWith('.test.ts')) files.push(join(dir, String(f)));
    }
  }
}
files.sort();

const pgUrl = process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
function postgresReachable() {
  const probe = `const pg = require('pg'); const c = new pg.Client({ connectionString: ${JSON.stringify(pgUrl)}, connectionTimeoutMillis: 3000 });
    c.connect().then(() => c.query('select 1')).then(() => c.end()).then(() => process.exit(0), () => process.exit(1));`;
  return spawnSync(process.execPath, ['-e', probe], { stdio: 'ignore', timeout: 10_000 }).status === 0;
}

const only = process.env.SWITCHBOARD_TEST_DIALECT;
const dialects = only ? [only] : ['sqlite', 'postgres'];
let failed = false;
for (const dialect of dialects) {
  if (dialect === 'postgres' && !postgresReachable()) {
    if (process.env.CI === 'true' || only === 'postgres') {
      console.error(`\n!!! PostgreSQL is not reachable at ${pgUrl}: the PostgreSQL run of the suite cannot run.\n`);
      failed = true;
      continue;
    }
    console.error(`\n!!! SKIPPED: the PostgreSQL run of the suite — no PostgreSQL at ${pgUrl}. Start it, or set SWITCHBOARD_TEST_PG_URL.\n`);
    continue;
  }
  console.log(`\n== test suite on ${dialect}`);
  const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=600000', ...flags, ...files], {
    stdio: 'inherit',
    env: { ...process.env, SWITCHBOARD_TEST_DIALECT: dialect },
  });
  if (res.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
