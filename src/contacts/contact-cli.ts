// `switchboard contacts import FILE.csv`: imports a CSV straight into the database (the server
// may be running or not), with a progress bar on stderr so --json keeps stdout to one object.
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { parseMode } from '../auth/credential-service.ts';
import type { Platform } from '../platform.ts';

export interface CliHelpers {
  withPlatform<T>(fn: (p: Platform) => Promise<T>): Promise<T>;
  accountOf(p: Platform, opts: { account?: string; default?: boolean }): Promise<string>;
  out(v: unknown): void;
}

export function registerContactCommands(program: Command, h: CliHelpers): void {
  const contacts = program.command('contacts').description('Manage contacts');
  contacts
    .command('import <file>')
    .description('Import contacts from a CSV file with a phone column (and name, time_zone, owner, tags, consent_status, … or any custom column)')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('live'))
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print the import report as JSON')
    .action(async (file: string, opts: { account?: string; default?: boolean; mode: string; progress: boolean; json?: boolean }) => {
      const size = statSync(file).size;
      const bar = opts.progress && process.stderr.isTTY !== false
        ? new cliProgress.SingleBar(
            { stream: process.stderr, format: 'Importing |{bar}| {percentage}% | {rows} rows | {created} new, {updated} updated, {failed} failed', hideCursor: true, etaBuffer: 50 },
            cliProgress.Presets.shades_classic,
          )
        : null;
      bar?.start(size, 0, { rows: 0, created: 0, updated: 0, failed: 0 });
      const report = await h.withPlatform(async (p) => {
        const accountId = await h.accountOf(p, opts);
        try {
          return await p.contactImports.run({ accountId, mode: parseMode(opts.mode) }, createReadStream(file), {
            filename: basename(file),
            bytesTotal: size,
            onProgress: (pr) => bar?.update(pr.bytesRead, { rows: pr.rows, created: pr.created, updated: pr.updated, failed: pr.failed }),
          });
        } finally {
          bar?.stop();
        }
      });
      if (opts.json) {
        h.out(report);
        return;
      }
      process.stdout.write(`${report.id}: ${report.rows_processed} rows, ${report.created} created, ${report.updated} updated, ${report.failed} failed\n`);
      for (const e of report.errors.slice(0, 20)) process.stdout.write(`  row ${e.row}: ${e.field}: ${e.message}\n`);
      if (report.failed > 20) process.stdout.write(`  … and ${report.failed - 20} more (GET /v1/contacts/imports/${report.id})\n`);
    });
}
