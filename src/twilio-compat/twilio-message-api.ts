// The Messages resource of Twilio's REST API on our send path: create, fetch, list, update
// (redact, cancel) and delete, each turned into MessageService calls. Nothing here sends on its
// own: consent, suppression, routing, throughput and idempotency are MessageService's, exactly as
// for POST /v1/messages. What the Twilio shape adds to a message (its messaging service SID, its
// StatusCallback, its deletion from the Twilio view) is in `twilio_messages`, written in the
// message's own transaction. Bodies are read only through the message view (MessageService).
import { sql } from 'kysely';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import type { Backpressure } from '../messages/backpressure.ts';
import type { MessageService } from '../messages/message-service.ts';
import { toMessageView, type MessageView } from '../messages/message-view.ts';
import { parseNumber } from '../messages/phone.ts';
import { recordEvents } from '../messages/status-machine.ts';
import { checkUrl } from '../net/url-policy.ts';
import { recordBy } from '../audit/audit-service.ts';
import { redactMessages } from '../security/retention.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import type { TemplateService } from '../templates/template-service.ts';
import { API_VERSION, messageSid, toTwilioMessage, type TwilioMessage } from './message-resource.ts';
import { idOf } from './sids.ts';
import { TwilioError, apiError, twilioInvalid, twilioNotFound } from './twilio-errors.ts';
import { twilioDb, twilioTx } from './twilio-tables.ts';

/** A form body or query string as Fastify parses it: repeated names become arrays. */
export type Form = Record<string, unknown>;

export type TwilioPrincipal = Principal & { accountSid: string };

const MAX_VALIDITY_S = 36_000;
const SCHEDULE_MIN_MS = 15 * 60_000;
const SCHEDULE_MAX_MS = 35 * 86400_000;
const IN_PROGRESS = new Set(['scheduled', 'queued', 'sending']);

/** The first value of a parameter (Twilio reads a repeated single-valued parameter's first). */
export function one(f: Form, name: string): string | undefined {
  const v = f[name];
  if (Array.isArray(v)) return typeof v[0] === 'string' ? v[0] : undefined;
  return typeof v === 'string' ? v : undefined;
}

function many(f: Form, name: string): string[] {
  const v = f[name];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x !== '');
}

/** Twilio sends booleans and numbers as text; a value that is not one is refused by name. */
function integer(f: Form, name: string, min: number, max: number, code = 20422): number | undefined {
  const v = one(f, name);
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) throw twilioInvalid(code, name, `${name} must be a whole number from ${min} to ${max}.`);
  return Number(v);
}

/** MessageService's refusals in Twilio's words; TwilioErrors pass through. */
function twilioOf(err: unknown): never {
  if (err instanceof TwilioError) throw err;
  if (err instanceof AppError) throw apiError(err);
  throw err;
}

export class TwilioMessageApi {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private messages: MessageService,
    private templates: TemplateService,
    private backpressure: Backpressure,
    private allowPrivateUrls: boolean,
  ) {}

  private listUri(accountSid: string) {
    return `/${API_VERSION}/Accounts/${accountSid}/Messages.json`;
  }

  /** Twilio's form → the input of POST /v1/messages, checked in Twilio's terms first. */
  private async input(pr: TwilioPrincipal, f: Form): Promise<{ input: Record<string, unknown>; statusCallback: string | null; serviceSid: string | null }> {
    const to = one(f, 'To');
    if (!to) throw twilioInvalid(21604, 'To', "A 'To' phone number is required.");
    const input: Record<string, unknown> = { to };
    const from = one(f, 'From');
    if (from) input.from = from;
    const serviceSid = one(f, 'MessagingServiceSid') || null;
    if (serviceSid) {
      const poolId = idOf(serviceSid, 'pool', ['MG']);
      if (!poolId) throw twilioInvalid(21705, 'MessagingServiceSid', `${serviceSid} is not a valid Messaging Service SID.`);
      // With From as well, Twilio sends from that number under the service's settings: the
      // service must still be one of the account's.
      if (!from) input.sender_pool_id = poolId;
      else if (!(await this.storage.read.selectFrom('sender_pools').select('id').where('id', '=', poolId).where('account_id', '=', pr.accountId).executeTakeFirst())) {
        throw twilioInvalid(21705, 'MessagingServiceSid', `${serviceSid} is not a messaging service of this account.`);
      }
    }
    const body = one(f, 'Body');
    const media = many(f, 'MediaUrl');
    if (media.length > 10) throw twilioInvalid(21623, 'MediaUrl', 'A message can carry at most 10 media URLs.', { count: media.length });
    const contentSid = one(f, 'ContentSid');
    if (contentSid) {
      if (body) throw twilioInvalid(20422, 'Body', 'Give Body or ContentSid, not both.');
      input.template = await this.template(pr, contentSid, one(f, 'ContentVariables'));
    } else if (body !== undefined && body !== '') {
      input.body = body;
    } else if (media.length === 0) {
      throw twilioInvalid(21602, 'Body', 'Message body is required.');
    }
    if (media.length) {
      input.channel = 'mms';
      input.media_urls = media;
    }
    const validity = integer(f, 'ValidityPeriod', 1, MAX_VALIDITY_S);
    if (validity !== undefined) input.validity_period = validity;
    const sendAt = one(f, 'SendAt');
    const scheduleType = one(f, 'ScheduleType');
    if (sendAt !== undefined || scheduleType !== undefined) {
      if (scheduleType !== 'fixed') throw twilioInvalid(20422, 'ScheduleType', 'ScheduleType must be "fixed" to schedule a message with SendAt.');
      const at = sendAt && /^\d{4}-\d{2}-\d{2}T/.test(sendAt) ? Date.parse(sendAt) : NaN;
      const ahead = at - this.clock.now();
      if (Number.isNaN(at) || ahead < SCHEDULE_MIN_MS || ahead > SCHEDULE_MAX_MS) {
        throw twilioInvalid(35114, 'SendAt', 'Scheduling does not support this timestamp: SendAt must be an ISO 8601 time between 15 minutes and 35 days from now.');
      }
      input.send_at = new Date(at).toISOString();
    }
    let statusCallback: string | null = null;
    const cb = one(f, 'StatusCallback');
    if (cb) {
      try {
        statusCallback = checkUrl(cb, 'StatusCallback', this.allowPrivateUrls);
      } catch (err) {
        throw twilioInvalid(21609, 'StatusCallback', (err as Error).message);
      }
    }
    return { input, statusCallback, serviceSid };
  }

  /**
   * ContentSid (HX…) is one of our templates; ContentVariables is Twilio's JSON object. Twilio's
   * positional names ("1", "2"…) are the template's declared variables in order; other names
   * are used as they are.
   */
  private async template(pr: TwilioPrincipal, contentSid: string, rawVariables: string | undefined) {
    const id = idOf(contentSid, 'tpl', ['HX']);
    if (!id) throw twilioInvalid(21655, 'ContentSid', `${contentSid} is not a valid Content SID.`);
    let declared: string[];
    try {
      declared = (await this.templates.get(pr, id)).variables;
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') throw twilioInvalid(21655, 'ContentSid', `No content ${contentSid} in this account.`);
      throw err;
    }
    let given: unknown = {};
    if (rawVariables !== undefined && rawVariables !== '') {
      try {
        given = JSON.parse(rawVariables);
      } catch {
        throw twilioInvalid(21656, 'ContentVariables', 'ContentVariables must be a JSON object.');
      }
    }
    if (typeof given !== 'object' || given === null || Array.isArray(given)) throw twilioInvalid(21656, 'ContentVariables', 'ContentVariables must be a JSON object.');
    const variables: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(given)) {
      const positional = /^[1-9]\d*$/.test(k) ? declared[Number(k) - 1] : undefined;
      variables[positional ?? k] = v;
    }
    return { id, variables };
  }

  private async context(ids: string[]) {
    const sentAt = new Map<string, number>();
    const services = new Map<string, string>();
    if (ids.length === 0) return { sentAt, services };
    const db = twilioDb(this.storage);
    const sent = await db
      .selectFrom('message_events')
      .select(['message_id', (eb) => eb.fn.min('at').as('at')])
      .where('message_id', 'in', ids)
      .where('status', '=', 'sent')
      .groupBy('message_id')
      .execute();
    for (const s of sent) sentAt.set(s.message_id, Number(s.at));
    const extra = await db.selectFrom('twilio_messages').select(['message_id', 'messaging_service_sid']).where('message_id', 'in', ids).where('messaging_service_sid', 'is not', null).execute();
    for (const e of extra) services.set(e.message_id, e.messaging_service_sid!);
    return { sentAt, services };
  }

  private async resources(pr: TwilioPrincipal, views: MessageView[], accepted = false): Promise<TwilioMessage[]> {
    const { sentAt, services } = await this.context(views.map((v) => v.id));
    return views.map((v) =>
      toTwilioMessage(v, {
        accountSid: pr.accountSid,
        messagingServiceSid: services.get(v.id) ?? null,
        sentAt: v.direction === 'inbound' ? Date.parse(v.created_at) : (sentAt.get(v.id) ?? null),
        bodies: pr.bodies !== false,
        accepted,
      }),
    );
  }

  async create(pr: TwilioPrincipal, f: Form, idempotencyToken: string | null): Promise<TwilioMessage> {
    try {
      const { input, statusCallback, serviceSid } = await this.input(pr, f);
      await this.backpressure.check(pr.accountId);
      // Our keys and Twilio's tokens never answer for each other.
      const prepared = await this.messages.prepare(pr, input, idempotencyToken ? `twilio:${idempotencyToken}` : null);
      if (statusCallback || serviceSid) {
        prepared.alsoWrite = async (tx) => {
          await twilioTx(tx)
            .insertInto('twilio_messages')
            .values({ message_id: prepared.row.id, messaging_service_sid: serviceSid, status_callback: statusCallback, deleted_at: null, created_at: prepared.row.created_at })
            .execute();
        };
      }
      const [result] = await this.messages.commit([prepared]);
      if (!result.ok) throw result.error;
      const [resource] = await this.resources(pr, [result.message], serviceSid !== null && !result.replayed);
      return resource;
    } catch (err) {
      twilioOf(err);
    }
  }

  /** The message behind a SID, if this account and mode has it and has not deleted it. */
  private async view(pr: TwilioPrincipal, sid: string, path: string): Promise<MessageView> {
    const id = idOf(sid, 'msg', ['SM', 'MM']);
    if (!id) throw twilioNotFound(path);
    let view: MessageView;
    try {
      view = await this.messages.get(pr, id);
    } catch (err) {
      if (err instanceof AppError && err.code === 'NOT_FOUND') throw twilioNotFound(path);
      throw err;
    }
    if (view.channel !== 'sms' && view.channel !== 'mms') throw twilioNotFound(path);
    const gone = await twilioDb(this.storage).selectFrom('twilio_messages').select('deleted_at').where('message_id', '=', id).executeTakeFirst();
    if (gone?.deleted_at != null) throw twilioNotFound(path);
    return view;
  }

  async fetch(pr: TwilioPrincipal, sid: string, path: string): Promise<TwilioMessage> {
    const [resource] = await this.resources(pr, [await this.view(pr, sid, path)]);
    return resource;
  }

  /** POST …/Messages/{Sid}.json: `Body=""` redacts the text, `Status=canceled` cancels a scheduled message. */
  async update(pr: TwilioPrincipal, sid: string, f: Form, path: string): Promise<TwilioMessage> {
    const view = await this.view(pr, sid, path);
    const body = one(f, 'Body');
    const status = one(f, 'Status');
    if (body === undefined && status === undefined) throw twilioInvalid(20422, 'Body', 'Give Body="" to redact the message, or Status=canceled to cancel it.');
    if (body !== undefined && body !== '') throw twilioInvalid(20422, 'Body', 'Body can only be set to "" (redaction).');
    if (status !== undefined && status !== 'canceled') throw twilioInvalid(20422, 'Status', 'Status can only be set to canceled.');
    let current = view;
    if (status === 'canceled') {
      if (view.status !== 'scheduled' && view.status !== 'queued') {
        throw twilioInvalid(20422, 'Status', `Only a scheduled message can be canceled; this one is ${view.status}.`, { status: view.status });
      }
      try {
        current = await this.messages.cancel(pr, view.id);
      } catch (err) {
        twilioOf(err);
      }
    }
    if (body === '') current = await this.redact(pr, current, false);
    return (await this.resources(pr, [current]))[0];
  }

  /**
   * Erases a message's text (and, when deleting, hides the message from this API): everything
   * retention's redaction removes (security/retention.ts redactMessages — body, media
   * references, raw provider payloads, webhook payload copies, held receipts), audited as
   * `message.redacted` or `message.deleted`. The row and its timeline stay: they are the
   * delivery record the /v1 API and the audit trail keep.
   */
  private async redact(pr: TwilioPrincipal, view: MessageView, deleting: boolean): Promise<MessageView> {
    if (IN_PROGRESS.has(view.status)) {
      throw twilioInvalid(20009, deleting ? 'Sid' : 'Body', `A message that is ${view.status} cannot be ${deleting ? 'deleted' : 'redacted'} until its delivery has completed; cancel it first.`, { status: view.status });
    }
    const now = this.clock.now();
    const row = await transaction(this.storage.db, async (tx: Tx) => {
      // view() found the message in this account and mode: the id is the tenancy check.
      await redactMessages(tx, [view.id], now);
      await recordEvents(tx, [{ messageId: view.id, status: view.status, at: now, data: { action: deleting ? 'deleted' : 'body_redacted', via: 'twilio-compat', ignored: true } }]);
      if (deleting) {
        await twilioTx(tx)
          .insertInto('twilio_messages')
          .values({ message_id: view.id, messaging_service_sid: null, status_callback: null, deleted_at: now, created_at: now })
          .onConflict((oc) => oc.column('message_id').doUpdateSet({ deleted_at: now }))
          .execute();
      }
      await recordBy(tx, pr, { accountId: pr.accountId, mode: pr.mode, action: deleting ? 'message.deleted' : 'message.redacted', target: { type: 'message', id: view.id }, details: { via: 'twilio-compat' }, at: now });
      return tx.selectFrom('messages').selectAll().where('id', '=', view.id).executeTakeFirstOrThrow();
    });
    return toMessageView(row);
  }

  async remove(pr: TwilioPrincipal, sid: string, path: string): Promise<void> {
    await this.redact(pr, await this.view(pr, sid, path), true);
  }

  /**
   * GET …/Messages.json, newest first. PageToken `PA<sid>` continues after a message (older),
   * `PB<sid>` goes back before it (newer); Page alone skips Page × PageSize messages.
   */
  async list(pr: TwilioPrincipal, q: Form) {
    const pageSize = integer(q, 'PageSize', 1, 1000) ?? 50;
    const page = integer(q, 'Page', 0, 1_000_000) ?? 0;
    const tokenText = one(q, 'PageToken');
    let token: { dir: 'after' | 'before'; id: string } | null = null;
    if (tokenText) {
      const m = /^P([AB])((?:SM|MM)[0-9a-f]{32})$/.exec(tokenText);
      const id = m ? idOf(m[2], 'msg', ['SM', 'MM']) : null;
      if (!m || !id) throw twilioInvalid(20422, 'PageToken', 'PageToken is not one this API returned.');
      token = { dir: m[1] === 'A' ? 'after' : 'before', id };
    }
    const db = twilioDb(this.storage);
    let query = db
      .selectFrom('messages as m')
      .selectAll('m')
      .where('m.account_id', '=', pr.accountId)
      .where('m.mode', '=', pr.mode)
      .where('m.channel', 'in', ['sms', 'mms'])
      .where((eb) => eb.not(eb.exists(eb.selectFrom('twilio_messages as t').select('t.message_id').whereRef('t.message_id', '=', 'm.id').where('t.deleted_at', 'is not', null))));
    const filters = new URLSearchParams();
    for (const name of ['To', 'From'] as const) {
      const v = one(q, name);
      if (v === undefined || v === '') continue;
      filters.set(name, v);
      const address = parseNumber(v)?.e164 ?? v.trim();
      query = query.where(name === 'To' ? 'm.to_addr' : 'm.from_addr', '=', address);
    }
    // DateSent filters on when the message was due to go out: its send_at, else its creation.
    const due = sql<number>`coalesce(m.send_at, m.created_at)`;
    for (const name of ['DateSent', 'DateSent<', 'DateSent>'] as const) {
      const v = one(q, name);
      if (v === undefined || v === '') continue;
      filters.set(name, v);
      const dayOnly = /^\d{4}-\d{2}-\d{2}$/.test(v);
      const t = Date.parse(dayOnly ? `${v}T00:00:00Z` : v);
      if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(v)) throw twilioInvalid(20422, name, `${name} must be a date (YYYY-MM-DD) or an ISO 8601 time.`);
      const dayEnd = t + 86400_000;
      if (name === 'DateSent') query = dayOnly ? query.where(due, '>=', t).where(due, '<', dayEnd) : query.where(due, '=', t);
      else if (name === 'DateSent<') query = query.where(due, dayOnly ? '<' : '<=', dayOnly ? dayEnd : t);
      else query = query.where(due, '>=', t);
    }
    let rows;
    let more: boolean;
    if (token?.dir === 'before') {
      const newer = await query.where('m.id', '>', token.id).orderBy('m.id', 'asc').limit(pageSize + 1).execute();
      more = newer.length > pageSize;
      rows = newer.slice(0, pageSize).reverse();
    } else {
      let q2 = query;
      if (token) q2 = q2.where('m.id', '<', token.id);
      else if (page > 0) q2 = q2.offset(page * pageSize);
      const older = await q2.orderBy('m.id', 'desc').limit(pageSize + 1).execute();
      more = older.length > pageSize;
      rows = older.slice(0, pageSize);
    }
    const messages = await this.resources(pr, rows.map(toMessageView));
    const base = this.listUri(pr.accountSid);
    const uri = (p: number, pageToken?: string) => {
      const params = new URLSearchParams(filters);
      params.set('PageSize', String(pageSize));
      params.set('Page', String(p));
      if (pageToken) params.set('PageToken', pageToken);
      return `${base}?${params.toString()}`;
    };
    const sidOfRow = (r: (typeof rows)[number]) => messageSid({ id: r.id, channel: r.channel });
    const hasNext = token?.dir === 'before' ? rows.length > 0 : more;
    const hasPrevious = token?.dir === 'before' ? more : (token !== null || page > 0) && rows.length > 0;
    return {
      end: page * pageSize + Math.max(messages.length - 1, 0),
      first_page_uri: uri(0),
      messages,
      next_page_uri: hasNext && rows.length ? uri(page + 1, `PA${sidOfRow(rows[rows.length - 1])}`) : null,
      page,
      page_size: pageSize,
      previous_page_uri: hasPrevious ? uri(Math.max(page - 1, 0), `PB${sidOfRow(rows[0])}`) : null,
      start: page * pageSize,
      uri: uri(page, tokenText),
    };
  }
}
