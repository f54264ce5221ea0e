// `switchboard users create|list` (CONTRACT §10). The password is
// read from standard input (--password-stdin), never from an argument, which other users of the
// machine could read in the process list.
import { Option, type Command } from 'commander';
import { CLI_ACTOR } from '../audit/audit-service.ts';
import type { CliHelpers } from '../contacts/contact-cli.ts';
import { ROLES } from './roles.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  // One trailing newline is the end of the line `echo` or a heredoc adds, not the password's.
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function registerUserCommands(program: Command, h: CliHelpers & { fail(message: string): never }): void {
  const users = program.command('users').description('Manage the people who sign in to the dashboard');
  users
    .command('create')
    .description('Add a person to an account')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .requiredOption('--email <email>', 'their email (unique in the account)')
    .addOption(new Option('--role <role>', 'what they may do').choices([...ROLES]).makeOptionMandatory())
    .option('--password-stdin', 'read the password from standard input')
    .option('--json', 'print JSON')
    .action(async (opts: { account?: string; default?: boolean; email: string; role: string; passwordStdin?: boolean; json?: boolean }) => {
      if (!opts.passwordStdin) h.fail('give the password on standard input with --password-stdin, e.g. `printf %s "$PASSWORD" | switchboard users create … --password-stdin`');
      const password = await readStdin();
      const user = await h.withPlatform(async (p) => p.users.create(await h.accountOf(p, opts), { email: opts.email, password, role: opts.role }, { actor: CLI_ACTOR, ip: null }));
      if (opts.json) h.out(user);
      else process.stdout.write(`${user.id}\n`);
    });
  users
    .command('list')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .option('--json', 'print JSON')
    .action(async (opts: { account?: string; default?: boolean; json?: boolean }) => {
      const list = await h.withPlatform(async (p) => p.users.list(await h.accountOf(p, opts)));
      if (opts.json) h.out({ data: list });
      else for (const u of list) process.stdout.write(`${u.id}\t${u.email}\t${u.role}${u.disabled ? '\tdisabled' : ''}${u.totp_enabled ? '\ttotp' : ''}\n`);
    });
}
