// `switchboard keys rotate-encryption` and `switchboard keys encryption-status`: key rotation
// from the command line, with the server running or not (key-rotation.ts does the work; a
// progress bar goes to stderr so --json keeps stdout to one object).
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { CliHelpers } from '../contacts/contact-cli.ts';
import type { RotationView } from './key-rotation.ts';

function keysCommand(program: Command): Command {
  return program.commands.find((c) => c.name() === 'keys') ?? program.command('keys').description('Manage API keys and encryption keys');
}

const line = (v: RotationView) =>
  `${v.id} ${v.status} ${v.percent}%: ${v.scanned} of ~${v.total} rows scanned, ${v.resealed} re-sealed under ${v.target_key_id}, ${v.unreadable} unreadable` +
  (v.table ? ` (table ${v.table}, ${v.tables_done + 1} of ${v.tables_total})` : '');

export function registerKeyCommands(program: Command, h: Pick<CliHelpers, 'withPlatform' | 'out'>): void {
  const keys = keysCommand(program);
  keys
    .command('rotate-encryption')
    .description(
      'Re-seal every encrypted value under SWITCHBOARD_ENCRYPTION_KEY, in bounded batches, while the server keeps running. ' +
        'Every process must hold the old keys in SWITCHBOARD_ENCRYPTION_KEYS_OLD until this ends. Resumable: run it again after a crash.',
    )
    .option('--batch <rows>', 'rows per batch (one transaction each)', '500')
    .option('--detach', 'only ask for it: the running workers do it in the background')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the rotation as JSON')
    .action(async (opts: { batch: string; detach?: boolean; progress: boolean; json?: boolean }) => {
      const result = await h.withPlatform(async (p) => {
        const { rotation, created } = await p.keyRotation.request({ batchSize: Number(opts.batch) });
        if (opts.detach) return rotation;
        if (!opts.json) process.stderr.write(`${created ? 'Started' : 'Following'} rotation ${rotation.id} to key ${p.sealer.keyId}.\n`);
        const bar =
          opts.progress && process.stderr.isTTY
            ? new cliProgress.SingleBar({ stream: process.stderr, format: 'Re-sealing |{bar}| {percentage}% | {table} | {resealed} re-sealed, {unreadable} unreadable', hideCursor: true }, cliProgress.Presets.shades_classic)
            : null;
        bar?.start(100, 0, { table: '', resealed: 0, unreadable: 0 });
        let lastLine = 0;
        const final = await p.keyRotation.follow(rotation.id, (v) => {
          bar?.update(v.percent, { table: v.table ?? 'done', resealed: v.resealed, unreadable: v.unreadable });
          if (!bar && !opts.json && Date.now() - lastLine > 2000) {
            lastLine = Date.now();
            process.stderr.write(`${line(v)}\n`);
          }
        });
        bar?.stop();
        return final;
      });
      if (opts.json) h.out(result);
      else {
        process.stdout.write(`${line(result)}\n`);
        if (result.status === 'completed' && result.unreadable === 0) process.stdout.write('Every value is sealed under the primary key: the old keys can be removed from SWITCHBOARD_ENCRYPTION_KEYS_OLD.\n');
        else if (result.status === 'completed') process.stdout.write('Some values could not be opened with the configured keys: keep the old keys until they are found (switchboard keys encryption-status).\n');
      }
      if (result.status === 'failed' || result.status === 'canceled') process.exitCode = 1;
    });

  keys
    .command('encryption-status')
    .description('The latest key rotation, and how many stored values each key sealed (a full scan of the encrypted columns)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const status = await h.withPlatform(async (p) => ({
        primary_key_id: p.sealer.keyId,
        known_key_ids: p.sealer.ids(),
        rotation: await p.keyRotation.latest(),
        columns: await p.keyRotation.census(),
      }));
      if (opts.json) {
        h.out(status);
        return;
      }
      process.stdout.write(`primary key ${status.primary_key_id}; can open ${status.known_key_ids.join(', ')}\n`);
      process.stdout.write(status.rotation ? `latest rotation: ${line(status.rotation)}\n` : 'no rotation yet\n');
      for (const c of status.columns) {
        const counts = Object.entries(c.counts).map(([k, n]) => `${k}: ${n}`).join(', ');
        if (counts) process.stdout.write(`  ${c.table}.${c.column}  ${counts}\n`);
      }
    });
}
