// The `switchboard` command line (CONTRACT §1). Works on the same database as the server, with
// the server running or not; migrates a new database itself. With --json a command prints one
// JSON object on stdout and nothing else (logs go to stderr).
import { Command, Option } from 'commander';
import pino from 'pino';
import { parseMode, parseScopes } from '../auth/credential-service.ts';
import type { Principal } from '../auth/scopes.ts';
import { ConfigError, loadConfig, type Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { buildApp } from '../http/app.ts';
import { createLogger } from '../logger.ts';
import { FINAL_STATUSES } from '../messages/status-machine.ts';
import { createPlatform, type Platform, type PlatformRole } from '../platform.ts';
import { sleep } from '../clock.ts';
import { registerContactCommands } from '../contacts/contact-cli.ts';
import { registerCampaignCommands } from '../campaigns/campaign-cli.ts';
import { registerTwilioCommands } from '../twilio-compat/twilio-cli.ts';
import { registerUserCommands } from '../users/user-cli.ts';
import { registerAuditCommands } from '../audit/audit-cli.ts';
import { registerKeyCommands } from '../security/key-cli.ts';
import { registerWorkflowCommands } from '../workflows/workflow-cli.ts';
import { applyConnectionLimits } from '../security/rate-limits.ts';

const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

function fail(message: string): never {
  process.stderr.write(`switchboard: ${message}\n`);
  process.exit(1);
}

async function open(overrides: Partial<Config> = {}, forServer = false, role: PlatformRole = 'all'): Promise<Platform> {
  const config = loadConfig(process.env, overrides);
  // Commands other than `start` log to stderr, and only warnings, so stdout stays clean.
  const logger = forServer ? createLogger(config.LOG_LEVEL) : createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL, pino.destination(2));
  return createPlatform(config, { logger, role });
}

async function accountOf(p: Platform, opts: { account?: string; default?: boolean }): Promise<string> {
  if (opts.account) {
    await p.accounts.get(opts.account);
    return opts.account;
  }
  return (await p.accounts.ensureDefaultAccount(p.config.SWITCHBOARD_DEFAULT_ACCOUNT_NAME)).id;
}

async function withPlatform<T>(fn: (p: Platform) => Promise<T>): Promise<T> {
  const p = await open();
  try {
    await p.accounts.ensureDefaultAccount(p.config.SWITCHBOARD_DEFAULT_ACCOUNT_NAME);
    return await fn(p);
  } finally {
    await p.close();
  }
}

export function buildCli(): Command {
  const program = new Command();
  program.name('switchboard').description('Switchboard: business messaging with delivery truth, consent and workflows.').showHelpAfterError();

  program
    .command('start')
    .description('Serve the API and run the workers')
    .option('--port <n>', 'port to listen on (default: PORT or 3000)')
    .addOption(new Option('--role <role>', 'what this process runs').choices(['all', 'api', 'worker']).default('all'))
    .action(async (opts: { port?: string; role: 'all' | 'api' | 'worker' }) => {
      const overrides: Partial<Config> = {};
      if (opts.port !== undefined) overrides.PORT = Number(opts.port);
      const p = await open(overrides, true, opts.role);
      const first = await p.accounts.ensureDefaultAccount(p.config.SWITCHBOARD_DEFAULT_ACCOUNT_NAME);
      if (first.created) {
        const live = await p.credentials.createKey(first.id, { scopes: ['admin'], mode: 'live', name: 'first-start admin (live)' });
        const test = await p.credentials.createKey(first.id, { scopes: ['admin'], mode: 'test', name: 'first-start admin (test)' });
        const owner = await p.users.createFirstOwner(first.id);
        process.stdout.write(
          [
            '',
            'Switchboard first start: created the default account ' + first.id,
            '  admin API key (live mode): ' + live.secret,
            '  admin API key (test mode): ' + test.secret,
            '  dashboard sign-in (owner): ' + owner.email,
            '  password:                  ' + owner.password,
            '  These secrets are shown once. Store them now; create more keys with `npx switchboard keys create`',
            '  and more people with `npx switchboard users create`. Change the owner’s email and password after signing in.',
            '',
          ].join('\n') + '\n',
        );
      } else if ((await p.users.list(first.id)).length === 0) {
        // The default account was made by an earlier CLI command, or before people existed: the
        // first start that finds nobody to sign in creates the owner. Another process starting
        // at the same moment may win that race; then this one prints nothing.
        const owner = await p.users.createFirstOwner(first.id).catch(() => null);
        if (owner) {
          process.stdout.write(
            ['', `Switchboard: the default account ${first.id} had nobody to sign in; created its owner.`, '  dashboard sign-in (owner): ' + owner.email, '  password:                  ' + owner.password, '  Shown once. Change the email and password after signing in.', ''].join('\n') + '\n',
          );
        }
      }
      const declared = await p.applyConfigFile();
      if (declared.connectors + declared.senders + declared.routes > 0) p.log.info(declared, 'applied the connectors, senders and routes of the config file');
      const app = opts.role === 'worker' ? null : await buildApp(p);
      if (opts.role !== 'api') await p.startWorkers();
      if (app) {
        applyConnectionLimits(app.server, {
          maxConnections: p.config.SWITCHBOARD_MAX_CONNECTIONS,
          headersTimeoutMs: p.config.SWITCHBOARD_HEADERS_TIMEOUT_MS,
          requestTimeoutMs: p.config.SWITCHBOARD_REQUEST_TIMEOUT_MS,
          keepAliveTimeoutMs: p.config.SWITCHBOARD_KEEPALIVE_TIMEOUT_MS,
        });
        await app.listen({ port: p.config.PORT, host: p.config.HOST });
      }
      p.log.info({ port: app ? p.config.PORT : null, role: opts.role, database: p.storage.location }, 'switchboard started');
      let stopping = false;
      const shutdown = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        p.log.info({ signal }, 'shutting down');
        await app?.close();
        await p.close();
        process.exit(0);
      };
      process.on('SIGINT', () => void shutdown('SIGINT'));
      process.on('SIGTERM', () => void shutdown('SIGTERM'));
    });

  program
    .command('migrate')
    .description('Create or upgrade the database schema')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const p = await open();
      await p.close();
      if (opts.json) out({ database: p.storage.location, migrated: true });
      else process.stdout.write(`Database ${p.storage.location} is up to date.\n`);
    });

  const accounts = program.command('accounts').description('Manage accounts');
  accounts
    .command('create')
    .requiredOption('--name <name>', 'account name')
    .option('--json', 'print JSON')
    .action(async (opts: { name: string; json?: boolean }) => {
      const account = await withPlatform((p) => p.accounts.create(opts.name));
      if (opts.json) out(account);
      else process.stdout.write(`${account.id}\n`);
    });

  const credentialOptions = (cmd: Command) =>
    cmd
      .option('--account <id>', 'account id')
      .option('--default', 'the default account')
      .requiredOption('--scopes <list>', 'comma-separated scopes, e.g. messages:send,messages:read')
      .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('test'))
      .option('--name <name>', 'a label')
      .option('--json', 'print JSON');

  const keys = program.command('keys').description('Manage API keys');
  credentialOptions(keys.command('create').description('Create an API key; its secret is printed once')).action(
    async (opts: { account?: string; default?: boolean; scopes: string; mode: string; name?: string; json?: boolean }) => {
      const key = await withPlatform(async (p) => p.credentials.createKey(await accountOf(p, opts), { scopes: parseScopes(opts.scopes), mode: parseMode(opts.mode), name: opts.name }));
      if (opts.json) out(key);
      else process.stdout.write(`${key.id}\n${key.secret}\n`);
    },
  );
  keys
    .command('list')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .option('--json', 'print JSON')
    .action(async (opts: { account?: string; default?: boolean; json?: boolean }) => {
      const list = await withPlatform(async (p) => p.credentials.listKeys(await accountOf(p, opts)));
      if (opts.json) out({ data: list });
      else for (const k of list) process.stdout.write(`${k.id}\t${k.mode}\t${k.prefix}…\t${k.scopes.join(',')}\t${k.revoked_at ? 'revoked' : 'active'}\n`);
    });
  keys
    .command('revoke <id>')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { account?: string; default?: boolean; json?: boolean }) => {
      const ok = await withPlatform(async (p) => p.credentials.revokeKey(await accountOf(p, opts), id));
      if (!ok) fail(`no active key ${id} in that account`);
      if (opts.json) out({ id, revoked: true });
      else process.stdout.write(`revoked ${id}\n`);
    });

  const clients = program.command('clients').description('Manage OAuth 2.0 clients');
  credentialOptions(clients.command('create').description('Create an OAuth client; its secret is printed once')).action(
    async (opts: { account?: string; default?: boolean; scopes: string; mode: string; name?: string; json?: boolean }) => {
      const client = await withPlatform(async (p) => p.credentials.createClient(await accountOf(p, opts), { scopes: parseScopes(opts.scopes), mode: parseMode(opts.mode), name: opts.name }));
      if (opts.json) out(client);
      else process.stdout.write(`${client.client_id}\n${client.client_secret}\n`);
    },
  );

  program
    .command('send')
    .description('Send a message and follow its status until it is final')
    .requiredOption('--to <number>', 'recipient')
    .requiredOption('--body <text>', 'the text')
    .option('--from <sender>', 'a sender of the account')
    .option('--channel <channel>', 'sms, mms, voice or rvm', 'sms')
    .option('--account <id>', 'account id (default: the default account)')
    .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('test'))
    .option('--no-follow', 'print the id and return')
    .option('--timeout <seconds>', 'how long to follow', '30')
    .option('--json', 'print the final message as JSON')
    .action(async (opts: { to: string; body: string; from?: string; channel: string; account?: string; mode: string; follow: boolean; timeout: string; json?: boolean }) => {
      const p = await open();
      try {
        const accountId = await accountOf(p, opts);
        const principal: Principal = { accountId, mode: parseMode(opts.mode), scopes: ['admin'], kind: 'api_key', credentialId: 'cli' };
        const { message } = await p.messages.send(principal, { to: opts.to, body: opts.body, from: opts.from, channel: opts.channel });
        if (!opts.json) process.stdout.write(`${message.id} ${message.status}\n`);
        let last = message;
        if (opts.follow) {
          // This process works the queue too; with a server on the same database, leases keep
          // the two from sending anything twice.
          await p.startWorkers();
          const deadline = Date.now() + Number(opts.timeout) * 1000;
          let seen = message.status;
          while (Date.now() < deadline && !FINAL_STATUSES.has(last.status)) {
            await sleep(100);
            last = await p.messages.get(principal, message.id);
            if (last.status !== seen && !opts.json) process.stdout.write(`${message.id} ${last.status}${last.error ? ` ${last.error.class}: ${last.error.message}` : ''}\n`);
            seen = last.status;
          }
        }
        if (opts.json) out(last);
      } finally {
        await p.close();
      }
    });

  registerContactCommands(program, { withPlatform, accountOf, out });
  registerCampaignCommands(program, { withPlatform, accountOf, out });
  registerWorkflowCommands(program, { withPlatform, accountOf, out });
  registerTwilioCommands(program, { withPlatform, accountOf, out });
  registerUserCommands(program, { withPlatform, accountOf, out, fail });
  registerAuditCommands(program, { withPlatform, accountOf, out });
  registerKeyCommands(program, { withPlatform, out });
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    if (err instanceof AppError) fail(`${err.code}: ${err.message}`);
    fail((err as Error).stack ?? String(err));
  }
}

const invokedDirectly = process.argv[1] && /cli[\\/]main\.ts$/.test(process.argv[1]);
if (invokedDirectly) await main(process.argv);
