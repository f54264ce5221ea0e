// Runs every *.test.ts under src/ and test/ with node's test runner through tsx.
// (Node 20's --test does not expand globs itself.) Extra arguments name files or filter.
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
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...flags, ...files],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
