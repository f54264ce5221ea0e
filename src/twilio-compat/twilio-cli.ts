// `switchboard twilio credentials`: the account SID and auth token a Twilio app uses against this
// server (made on first use, the same every time after; --rotate makes a new token).
import { Option, type Command } from 'commander';
import { parseMode } from '../auth/credential-service.ts';
import type { CliHelpers } from '../contacts/contact-cli.ts';

export function registerTwilioCommands(program: Command, h: CliHelpers): void {
  const tw = program.command('twilio').description('The Twilio-compatible API (/2010-04-01)');
  tw.command('credentials')
    .description('Print the Twilio account SID and auth token of an account and mode (made on first use)')
    .option('--account <id>', 'account id')
    .option('--default', 'the default account')
    .addOption(new Option('--mode <mode>', 'test or live').choices(['test', 'live']).default('test'))
    .option('--rotate', 'make a new auth token (the old one stops working at once; the account SID stays)')
    .option('--json', 'print JSON')
    .action(async (opts: { account?: string; default?: boolean; mode: string; rotate?: boolean; json?: boolean }) => {
      const c = await h.withPlatform(async (p) => p.twilio.accounts.credentials(await h.accountOf(p, opts), parseMode(opts.mode), { rotate: opts.rotate === true }));
      if (opts.json) h.out({ account_sid: c.account_sid, auth_token: c.auth_token, account_id: c.account_id, mode: c.mode });
      else process.stdout.write(`TWILIO_ACCOUNT_SID=${c.account_sid}\nTWILIO_AUTH_TOKEN=${c.auth_token}\n`);
    });
}
