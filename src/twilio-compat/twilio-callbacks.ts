// Twilio-style requests to the customer's application, as two kinds of webhook delivery target
// (src/webhooks/webhook-worker.ts TargetKind). They ride the outbox like every webhook: created
// in the fan-out transaction, claimed with a lease, retried on the schedule, in order per
// message and target, at least once. What differs is the request:
//
//   status callbacks (`twcb:<url>`) — for a message sent through the compatible API with a
//       StatusCallback (or a TwiML <Message statusCallback>), one form POST per status change
//       after creation, as Twilio sends them: MessageSid, SmsSid, MessageStatus, SmsStatus,
//       AccountSid, From, To, ApiVersion, MessagingServiceSid, ErrorCode, RawDlrDoneDate.
//       Like Twilio, none for the status the message was created with (queued), except that a
//       message created through a messaging service starts as `accepted` and so gets `queued`.
//   incoming messages (`twin:<url>`) — for an inbound message to a number with an SmsUrl, the
//       Twilio inbound parameters by SmsMethod (POST form, or GET query). If the answer is TwiML
//       with <Message> verbs, those replies are sent through MessageService as `outbound-reply`
//       messages, each with the idempotency key `twiml:<delivery id>:<n>`, so a delivery that is
//       repeated (a crash before its outcome was recorded) never sends a reply twice.
//
// Both are signed with X-Twilio-Signature (HMAC-SHA1 keyed by the account's auth token over the
// URL and the sorted POST parameters: the outbound Twilio connector's own function), carry
// I-Twilio-Idempotency-Token (the delivery id, the same on every retry) and come from the user
// agent TwilioProxy/1.1, so an existing handler's twilio.validateRequest accepts them.
//
// Keywords come first: an inbound STOP has already opted the sender out (src/inbox) when its
// webhook goes, with OptOutType=STOP; a TwiML reply to it is refused by MessageService's
// suppression check (Twilio's 21610), and recorded as a note in the delivery's attempt log.
import type { Logger } from 'pino';
import type { Mode, Principal } from '../auth/scopes.ts';
import { twilioSignature } from '../connectors/twilio/twilio-connector.ts';
import { HELP_KEYWORDS, OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, keywordOf } from '../consent/messaging-settings.ts';
import { AppError } from '../errors.ts';
import type { MessageService, PreparedMessage } from '../messages/message-service.ts';
import { countryFacts } from '../messages/phone.ts';
import { checkUrl } from '../net/url-policy.ts';
import type { Storage } from '../storage/database.ts';
import type { SendResult } from '../webhooks/http-sender.ts';
import type { KindDelivery, OutboxRow, TargetKind } from '../webhooks/webhook-worker.ts';
import type { WebhookTx } from '../webhooks/webhook-tables.ts';
import { API_VERSION, messageSid, twilioStatus } from './message-resource.ts';
import { sidOf } from './sids.ts';
import type { TwilioAccounts } from './twilio-accounts.ts';
import { apiError, messageError } from './twilio-errors.ts';
import { twilioDb, twilioTx } from './twilio-tables.ts';
import { TwimlError, parseTwiml } from './twiml.ts';

export const STATUS_CALLBACK_PREFIX = 'twcb:';
export const INCOMING_PREFIX = 'twin:';
const USER_AGENT = 'TwilioProxy/1.1';
const FORM = 'application/x-www-form-urlencoded';
/** Twilio reads at most 64 KB of a webhook's answer. */
const TWIML_CAP = 64 * 1024;

export interface CallbackDeps {
  storage: Storage;
  accounts: TwilioAccounts;
  messages: MessageService;
  log: Logger;
  allowPrivateUrls: boolean;
}

/** Twilio's RawDlrDoneDate: YYMMDDhhmm, UTC here. */
function dlrDate(ms: number): string {
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

async function signed(accounts: TwilioAccounts, d: KindDelivery, url: string, params: Record<string, string>, method: 'POST' | 'GET') {
  const { authToken } = await accounts.signingKey(d.account_id, d.mode);
  const form = new URLSearchParams(params);
  // For a GET the parameters are part of the URL, and only POST parameters are appended.
  const target = method === 'GET' ? `${url}${url.includes('?') ? '&' : '?'}${form.toString()}` : url;
  const signature = twilioSignature(authToken, target, method === 'GET' ? {} : params);
  return {
    url: target,
    method,
    headers: { 'x-twilio-signature': signature, 'i-twilio-idempotency-token': d.id },
    body: method === 'GET' ? '' : form.toString(),
    contentType: FORM,
    userAgent: USER_AGENT,
  };
}

export function statusCallbackKind(deps: CallbackDeps): TargetKind {
  return {
    prefix: STATUS_CALLBACK_PREFIX,
    async fanOut(tx: WebhookTx, events: OutboxRow[]) {
      const statusEvents = events.filter((e) => e.message_id && e.type.startsWith('message.') && e.type !== 'message.received');
      const ids = [...new Set(statusEvents.map((e) => e.message_id!))];
      if (ids.length === 0) return [];
      const db = twilioTx(tx as never);
      const rows = await db
        .selectFrom('twilio_messages as t')
        .innerJoin('messages as m', 'm.id', 't.message_id')
        .select(['t.message_id', 't.status_callback', 't.messaging_service_sid', 'm.send_at'])
        .where('t.message_id', 'in', ids)
        .where('t.status_callback', 'is not', null)
        .execute();
      if (rows.length === 0) return [];
      const byId = new Map(rows.map((r) => [r.message_id, r]));
      const out: Array<{ event: OutboxRow; url: string }> = [];
      for (const e of statusEvents) {
        const r = byId.get(e.message_id!);
        if (!r) continue;
        // No callback for the status a message is created with: `queued` at acceptance (a
        // scheduled message's queued comes later, when its time has come, and does count).
        if (e.type === 'message.queued' && !r.messaging_service_sid && r.send_at === null) continue;
        out.push({ event: e, url: r.status_callback! });
      }
      return out;
    },
    async request(d: KindDelivery) {
      // The message as it is now (through the view), the status as it was at the event.
      const view = await deps.messages.get(actingFor(d), d.message_id!);
      const extra = await twilioDb(deps.storage).selectFrom('twilio_messages').select('messaging_service_sid').where('message_id', '=', d.message_id!).executeTakeFirst();
      const sid = messageSid(view);
      const status = twilioStatus({ status: d.event_type.replace(/^message\./, ''), provider_message_id: view.provider_message_id });
      const params: Record<string, string> = {
        AccountSid: await deps.accounts.accountSid(d.account_id, d.mode),
        ApiVersion: API_VERSION,
        From: view.from ?? '',
        MessageSid: sid,
        MessageStatus: status,
        SmsSid: sid,
        SmsStatus: status,
        To: view.to,
      };
      if (extra?.messaging_service_sid) params.MessagingServiceSid = extra.messaging_service_sid;
      const error = messageError(view);
      if (error && (status === 'failed' || status === 'undelivered')) params.ErrorCode = String(error.code);
      if (status === 'delivered' || status === 'undelivered') params.RawDlrDoneDate = dlrDate(d.created_at);
      return signed(deps.accounts, d, d.url, params, 'POST');
    },
  };
}

/** The Twilio-compatible principal a platform-made request acts as: the account and mode of the delivery. */
function actingFor(d: KindDelivery): Principal {
  return { accountId: d.account_id, mode: d.mode as Mode, scopes: ['messages:send', 'messages:read'], kind: 'twilio', credentialId: 'twiml', bodies: true };
}

interface NumberConfig {
  sender_id: string;
  sms_url: string | null;
  sms_method: string;
}

async function numberConfig(storage: Storage, accountId: string, mode: string, address: string): Promise<NumberConfig | undefined> {
  return twilioDb(storage)
    .selectFrom('twilio_numbers as n')
    .innerJoin('senders as s', 's.id', 'n.sender_id')
    .select(['n.sender_id', 'n.sms_url', 'n.sms_method'])
    .where('s.account_id', '=', accountId)
    .where('s.address', '=', address)
    .where('n.mode', '=', mode)
    .executeTakeFirst();
}

export function incomingMessageKind(deps: CallbackDeps): TargetKind {
  const { storage, accounts, messages, log } = deps;
  return {
    prefix: INCOMING_PREFIX,
    async fanOut(tx: WebhookTx, events: OutboxRow[]) {
      const received = events.filter((e) => e.type === 'message.received' && e.message_id);
      if (received.length === 0) return [];
      const db = twilioTx(tx as never);
      // The number it came to, from the row: the event's payload is not read for it.
      const rows = await db.selectFrom('messages').select(['id', 'to_addr']).where('id', 'in', received.map((e) => e.message_id!)).execute();
      const toOf = new Map(rows.map((r) => [r.id, r.to_addr]));
      const configs = await db
        .selectFrom('twilio_numbers as n')
        .innerJoin('senders as s', 's.id', 'n.sender_id')
        .select(['s.account_id', 's.address', 'n.mode', 'n.sms_url'])
        .where('s.address', 'in', [...new Set(rows.map((r) => r.to_addr))])
        .where('n.sms_url', 'is not', null)
        .execute();
      const out: Array<{ event: OutboxRow; url: string }> = [];
      for (const e of received) {
        const to = toOf.get(e.message_id!);
        const c = configs.find((x) => x.account_id === e.account_id && x.mode === e.mode && x.address === to);
        if (c?.sms_url) out.push({ event: e, url: c.sms_url });
      }
      return out;
    },
    async request(d: KindDelivery) {
      // The text through the message view (never our own SQL on messages.body).
      const view = await messages.get(actingFor(d), d.message_id!);
      const config = await numberConfig(storage, d.account_id, d.mode, view.to);
      const sid = sidOf(view.id, view.media_urls.length ? 'MM' : 'SM');
      const params: Record<string, string> = {
        AccountSid: await accounts.accountSid(d.account_id, d.mode),
        ApiVersion: API_VERSION,
        Body: view.body ?? '',
        From: view.from ?? '',
        MessageSid: sid,
        NumMedia: String(view.media_urls.length),
        NumSegments: String(view.segments),
        SmsMessageSid: sid,
        SmsSid: sid,
        SmsStatus: 'received',
        To: view.to,
      };
      view.media_urls.forEach((u, i) => (params[`MediaUrl${i}`] = u));
      const fromCountry = view.from ? countryFacts(view.from).country : undefined;
      const toCountry = countryFacts(view.to).country;
      if (fromCountry) params.FromCountry = fromCountry;
      if (toCountry) params.ToCountry = toCountry;
      const keyword = keywordOf(view.body ?? '');
      const optOut = OPT_OUT_KEYWORDS.includes(keyword) ? 'STOP' : OPT_IN_KEYWORDS.includes(keyword) ? 'START' : HELP_KEYWORDS.includes(keyword) ? 'HELP' : null;
      if (optOut) params.OptOutType = optOut;
      if (config) {
        const pool = await twilioDb(storage).selectFrom('sender_pool_members').select('pool_id').where('sender_id', '=', config.sender_id).orderBy('pool_id').executeTakeFirst();
        if (pool) params.MessagingServiceSid = sidOf(pool.pool_id);
      }
      return signed(accounts, d, config?.sms_url ?? d.url, params, config?.sms_method === 'GET' ? 'GET' : 'POST');
    },
    async answered(d: KindDelivery, answer: SendResult) {
      const text = answer.body ?? '';
      if (text.length >= TWIML_CAP) return 'TwiML 12100: the answer is larger than 64 KB; no reply was sent.';
      if (text.trim() !== '' && !text.trim().startsWith('<')) return 'TwiML 12300: the answer is not TwiML (XML); no reply was sent.';
      let twiml;
      try {
        twiml = parseTwiml(text);
      } catch (err) {
        if (err instanceof TwimlError) return `TwiML ${err.code}: ${err.message} No reply was sent.`;
        throw err;
      }
      const notes: string[] = twiml.ignored.length ? [`ignored TwiML verbs: ${twiml.ignored.join(', ')}`] : [];
      if (twiml.messages.length === 0) return notes.join('; ') || null;
      const pr = actingFor(d);
      const inbound = await messages.get(pr, d.message_id!);
      const prepared: PreparedMessage[] = [];
      for (const [i, m] of twiml.messages.entries()) {
        const input: Record<string, unknown> = {
          to: m.to ?? inbound.from,
          from: m.from ?? inbound.to,
          metadata: { in_reply_to: inbound.id, twiml_reply: String(i + 1) },
        };
        if (m.body !== '') input.body = m.body;
        if (m.media.length) Object.assign(input, { channel: 'mms', media_urls: m.media });
        let callback: string | null = null;
        if (m.statusCallback) {
          try {
            callback = checkUrl(m.statusCallback, 'statusCallback', deps.allowPrivateUrls);
          } catch (err) {
            notes.push(`reply ${i + 1}: TwiML 14105: ${(err as Error).message} (sent without a status callback)`);
          }
        }
        try {
          const p = await messages.prepare(pr, input, `twiml:${d.id}:${i}`);
          if (callback) {
            p.alsoWrite = async (tx) => {
              await twilioTx(tx)
                .insertInto('twilio_messages')
                .values({ message_id: p.row.id, messaging_service_sid: null, status_callback: callback, deleted_at: null, created_at: p.row.created_at })
                .execute();
            };
          }
          prepared.push(p);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          const e = apiError(err);
          notes.push(`reply ${i + 1} not sent: ${e.twilioCode} ${err.message}`);
        }
      }
      if (prepared.length) {
        const results = await messages.commit(prepared);
        for (const r of results) {
          if (!r.ok) notes.push(`reply not sent: ${apiError(r.error).twilioCode} ${r.error.message}`);
          else if (!r.replayed) log.debug({ message_id: r.message.id, in_reply_to: inbound.id }, 'TwiML reply accepted');
        }
      }
      return notes.join('; ') || null;
    },
  };
}
