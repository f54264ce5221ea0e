// `switchboard audit verify [--account ID|--default] [--json]`: walks the audit log's hash
// chains (src/audit/audit-service.ts) and exits 1 naming the first entry that was edited,
// removed or reordered in the database. With no account, every chain is walked.
import type { Command } from 'commander';
import type { CliHelpers } from '../contacts/contact-cli.ts';
import type { ChainReport } from './audit-service.ts';

export function registerAuditCommands(program: Command, h: CliHelpers): void {
  const audit = program.command('audit').description('The audit log');
  audit
    .command('verify')
    .description('Walk the audit log’s hash chains; exits 1 naming the first entry that was edited, removed or reordered')
    .option('--account <id>', 'only this account’s chain')
    .option('--default', 'only the default account’s chain')
    .option('--json', 'print JSON')
    .action(async (opts: { account?: string; default?: boolean; json?: boolean }) => {
      const result = await h.withPlatform(async (p) => p.audit.verifyAll(opts.account || opts.default ? [await h.accountOf(p, opts)] : undefined));
      if (opts.json) h.out(result);
      else for (const c of result.chains) process.stdout.write(describe(c));
      if (!result.ok) {
        const first = result.chains.find((c) => !c.ok)!.fault!;
        process.stderr.write(`switchboard: audit log tampered with: ${first.message}\n`);
        process.exitCode = 1;
      }
    });
}

function describe(c: ChainReport): string {
  if (c.ok) return `${c.chain}: ok, ${c.entries} entries${c.head ? `, head ${c.head.hash}` : ''}\n`;
  return `${c.chain}: BROKEN at entry ${c.fault!.seq}${c.fault!.id ? ` (${c.fault!.id})` : ''}: ${c.fault!.problem}\n`;
}
