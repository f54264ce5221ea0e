// The Twilio-compatible API's public surface: existing Twilio apps switch by changing one base
// URL. platform.ts calls createTwilioCompat and nothing else here; http/app.ts registers
// twilioRoutes; the CLI registers its `twilio` commands.
import type { Logger } from 'pino';
import type { CredentialService } from '../auth/credential-service.ts';
import type { Clock } from '../clock.ts';
import type { Backpressure } from '../messages/backpressure.ts';
import type { MessageService } from '../messages/message-service.ts';
import type { SenderService } from '../senders/sender-service.ts';
import type { Storage } from '../storage/database.ts';
import type { TemplateService } from '../templates/template-service.ts';
import type { WebhookWorker } from '../webhooks/webhook-worker.ts';
import { IncomingNumbers } from './incoming-numbers.ts';
import { incomingMessageKind, statusCallbackKind } from './twilio-callbacks.ts';
import { TwilioAccounts } from './twilio-accounts.ts';
import { TwilioMessageApi } from './twilio-message-api.ts';

export interface TwilioCompat {
  accounts: TwilioAccounts;
  messages: TwilioMessageApi;
  numbers: IncomingNumbers;
}

export function createTwilioCompat(deps: {
  storage: Storage;
  clock: Clock;
  log: Logger;
  credentials: CredentialService;
  messages: MessageService;
  templates: TemplateService;
  backpressure: Backpressure;
  senders: SenderService;
  webhookWorker: WebhookWorker;
  allowPrivateUrls: boolean;
}): TwilioCompat {
  const accounts = new TwilioAccounts(deps.storage, deps.clock, deps.credentials);
  const callbackDeps = { storage: deps.storage, accounts, messages: deps.messages, log: deps.log, allowPrivateUrls: deps.allowPrivateUrls };
  deps.webhookWorker.addTargetKind(statusCallbackKind(callbackDeps));
  deps.webhookWorker.addTargetKind(incomingMessageKind(callbackDeps));
  return {
    accounts,
    messages: new TwilioMessageApi(deps.storage, deps.clock, deps.messages, deps.templates, deps.backpressure, deps.allowPrivateUrls),
    numbers: new IncomingNumbers(deps.storage, deps.clock, deps.senders, deps.allowPrivateUrls),
  };
}
