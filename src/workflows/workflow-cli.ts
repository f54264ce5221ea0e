// `switchboard workflows …`: create a workflow from a JSON file (examples/workflows/), list them,
// show one run. Works on the database directly, with the server running or not.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parseMode } from '../auth/credential-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { CliHelpers } from '../contacts/contact-cli.ts';
import { validation } from '../errors.ts';
import type { Platform } from '../platform.ts';

interface Target {
  account?: string;
  default?: boolean;
  mode: string;
  json?: boolean;
}

const targetOptions = (cmd: Command) =>
  cmd
    .option('--account <id>', 'account id (default: the default account)')
    .option('--default', 'the default account')
    .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('test'))
    .option('--json', 'print JSON');

async function principalFor(p: Platform, h: CliHelpers, opts: Target): Promise<Principal> {
  return { accountId: await h.accountOf(p, opts), mode: parseMode(opts.mode), scopes: ['admin'], kind: 'api_key', credentialId: 'cli' };
}

export function registerWorkflowCommands(program: Command, h: CliHelpers): void {
  const workflows = program.command('workflows').description('Manage workflows (docs/workflows.md)');
  targetOptions(workflows.command('create').description('Create a workflow from a JSON definition file').requiredOption('--file <path>', 'the definition, e.g. examples/workflows/order-updates.json')).action(
    async (opts: Target & { file: string }) => {
      let input: unknown;
      try {
        input = JSON.parse(readFileSync(opts.file, 'utf8'));
      } catch (err) {
        throw validation('file', `${opts.file} could not be read as JSON: ${(err as Error).message}`);
      }
      const w = await h.withPlatform(async (p) => p.workflows.service.create(await principalFor(p, h, opts), input));
      if (opts.json) h.out(w);
      else process.stdout.write(`${w.id} v${w.version} "${w.name}" on ${w.trigger.event}, ${w.steps.length} steps\n`);
    },
  );
  targetOptions(workflows.command('list').description('List workflows')).action(async (opts: Target) => {
    const page = await h.withPlatform(async (p) => p.workflows.service.list(await principalFor(p, h, opts), { limit: 200 }));
    if (opts.json) h.out(page);
    else for (const w of page.data) process.stdout.write(`${w.id} v${w.version} ${w.enabled ? 'enabled ' : 'disabled'} ${w.trigger.event} "${w.name}"\n`);
  });
  targetOptions(workflows.command('run <id>').description('Show a run and its steps')).action(async (id: string, opts: Target) => {
    const r = await h.withPlatform(async (p) => p.workflows.service.run(await principalFor(p, h, opts), id));
    if (opts.json) h.out(r);
    else {
      process.stdout.write(`${r.id} ${r.status} (workflow ${r.workflow_id} v${r.version})${r.error ? `: ${r.error}` : ''}\n`);
      for (const s of r.steps) process.stdout.write(`  ${s.id} ${s.type} ${s.status}${s.message_id ? ` ${s.message_id}` : ''}\n`);
    }
  });
}
