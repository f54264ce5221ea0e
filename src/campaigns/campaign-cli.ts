// `switchboard campaigns …`: create a campaign from a CSV file and follow it to completion with a
// progress bar (on stderr, so --json keeps stdout to one object); pause, resume, cancel and show
// one. Works on the database directly, with the server running or not: with a server on the same
// database, leases and the campaign's idempotency keys keep the two from sending anything twice.
import { readFileSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { parseMode } from '../auth/credential-service.ts';
import type { Principal } from '../auth/scopes.ts';
import { sleep } from '../clock.ts';
import type { CliHelpers } from '../contacts/contact-cli.ts';
import { validation } from '../errors.ts';
import type { Platform } from '../platform.ts';
import type { CampaignView } from './campaign-service.ts';

interface Target {
  account?: string;
  default?: boolean;
  mode: string;
}

const targetOptions = (cmd: Command) =>
  cmd
    .option('--account <id>', 'account id (default: the default account)')
    .option('--default', 'the default account')
    .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('test'))
    .option('--json', 'print the campaign as JSON');

async function principalFor(p: Platform, h: CliHelpers, opts: Target): Promise<Principal> {
  return { accountId: await h.accountOf(p, opts), mode: parseMode(opts.mode), scopes: ['admin'], kind: 'api_key', credentialId: 'cli' };
}

function summary(c: CampaignView): string {
  const s = c.stats;
  return `${c.id} ${c.status}: ${s.total} recipients, ${s.queued} waiting, ${s.sent} sent, ${s.delivered} delivered, ${s.failed} failed, ${s.suppressed} suppressed, ${s.expired} expired, ${s.canceled} canceled`;
}

/** Follows a campaign until it is completed or canceled (or `timeoutS` passes), updating the bar. */
async function follow(p: Platform, pr: Principal, id: string, timeoutS: number, showBar: boolean): Promise<CampaignView> {
  let c = await p.campaigns.get(pr, id);
  const bar = showBar
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: 'Sending |{bar}| {percentage}% | {value}/{total} done | {delivered} delivered, {failed} failed, {suppressed} suppressed | {status}', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  const payload = (v: CampaignView) => ({ delivered: v.stats.delivered, failed: v.stats.failed, suppressed: v.stats.suppressed, status: v.status });
  bar?.start(Math.max(c.stats.total, 1), 0, payload(c));
  const deadline = Date.now() + timeoutS * 1000;
  try {
    while (!['completed', 'canceled'].includes(c.status) && Date.now() < deadline) {
      await sleep(250);
      c = await p.campaigns.get(pr, id);
      bar?.setTotal(Math.max(c.stats.total, 1));
      bar?.update(c.stats.total - c.stats.queued, payload(c));
    }
  } finally {
    bar?.stop();
  }
  return c;
}

export function registerCampaignCommands(program: Command, h: CliHelpers): void {
  const campaigns = program.command('campaigns').description('Bulk campaigns');

  targetOptions(campaigns.command('create').description('Create a campaign from a CSV file (a phone column; other columns are template variables), start it and follow it'))
    .requiredOption('--name <name>', 'campaign name')
    .requiredOption('--csv <file>', 'the audience: a CSV file with a phone column')
    .option('--body <text>', 'the text (Liquid, e.g. "Hi {{ name }}")')
    .option('--template <id>', 'a template id instead of --body')
    .addOption(new Option('--purpose <purpose>', 'transactional or marketing').choices(['transactional', 'marketing']).default('transactional'))
    .option('--channel <channel>', 'sms, voice or rvm', 'sms')
    .option('--from <sender>', 'a sender of the account')
    .option('--rate <n>', 'messages per minute (default: no limit)')
    .option('--window <HH:MM-HH:MM>', "send only inside this window of the recipient's local time")
    .option('--validity <seconds>', 'how long a message may wait to go out (default 7200)')
    .option('--start-at <iso>', 'start at this time')
    .option('--no-start', 'leave it as a draft')
    .option('--no-follow', 'print the campaign and return once started')
    .option('--no-progress', 'no progress bar')
    .option('--timeout <seconds>', 'how long to follow', '86400')
    .action(async (opts: Target & { json?: boolean; name: string; csv: string; body?: string; template?: string; purpose: string; channel: string; from?: string; rate?: string; window?: string; validity?: string; startAt?: string; start: boolean; follow: boolean; progress: boolean; timeout: string }) => {
      const input: Record<string, unknown> = { name: opts.name, audience: { csv: readFileSync(opts.csv, 'utf8') }, purpose: opts.purpose, channel: opts.channel };
      if (opts.body !== undefined) input.body = opts.body;
      if (opts.template !== undefined) input.template_id = opts.template;
      if (opts.from !== undefined) input.from = opts.from;
      if (opts.rate !== undefined) input.rate_per_minute = Number(opts.rate);
      if (opts.validity !== undefined) input.validity_period = Number(opts.validity);
      if (opts.startAt !== undefined) input.start_at = opts.startAt;
      if (opts.window !== undefined) {
        const m = /^(\d\d:\d\d)-(\d\d:\d\d)$/.exec(opts.window);
        if (!m) throw validation('window', '--window must look like 09:00-18:00.');
        input.send_window = { start: m[1], end: m[2] };
      }
      const result = await h.withPlatform(async (p) => {
        const pr = await principalFor(p, h, opts);
        let c = await p.campaigns.create(pr, input);
        if (!opts.start) return c;
        c = await p.campaigns.start(pr, c.id);
        if (!opts.json) process.stdout.write(`${c.id} ${c.status}: ${c.stats.total} recipients\n`);
        if (!opts.follow) return c;
        // This process works the queue too, so the campaign completes with or without a server.
        await p.startWorkers();
        return follow(p, pr, c.id, Number(opts.timeout), opts.progress && process.stderr.isTTY !== false);
      });
      if (opts.json) h.out(result);
      else process.stdout.write(`${summary(result)}\n`);
    });

  targetOptions(campaigns.command('get <id>').description("A campaign's status and stats")).action(async (id: string, opts: Target & { json?: boolean }) => {
    const c = await h.withPlatform(async (p) => p.campaigns.get(await principalFor(p, h, opts), id));
    if (opts.json) h.out(c);
    else process.stdout.write(`${summary(c)}\n`);
  });

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    targetOptions(campaigns.command(`${action} <id>`).description(`${action[0].toUpperCase()}${action.slice(1)} a campaign`)).action(async (id: string, opts: Target & { json?: boolean }) => {
      const c = await h.withPlatform(async (p) => p.campaigns[action](await principalFor(p, h, opts), id));
      if (opts.json) h.out(c);
      else process.stdout.write(`${summary(c)}\n`);
    });
  }
}
