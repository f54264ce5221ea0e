// Accepting messages and reading them back (CONTRACT §4).
//
// Accepting is two phases. `prepare` runs every check that can refuse a message — shape,
// number, sender, length, consent, routing — and writes nothing. `commit` writes the accepted
// messages, their first events, their outbox rows and their idempotency keys in ONE
// transaction; only after it returns does the API answer 202. Nothing refused leaves a row.
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.ts';
import type { Principal } from '../auth/scopes.ts';
import type { ConsentService, ConsentView } from '../consent/consent-service.ts';
import { AppError, ERROR_CLASSES, validation } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import { newId } from '../ids.ts';
import { checkUrl } from '../net/url-policy.ts';
import { planRoute } from '../routing/mms-fallback.ts';
import type { Router } from '../routing/router.ts';
import type { PoolTarget, SenderPools } from '../senders/sender-pools.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { readCache } from '../storage/read-cache.ts';
import { readMessagingSettings, type MessagingSettings } from '../consent/messaging-settings.ts';
import { analyseText } from './encoding.ts';
import { eventDataVisibleTo, messageRow, toMessageView, visibleTo, type MessageRow, type MessageView } from './message-view.ts';
import { isAlphanumericSender, normaliseNumber, parseNumber } from './phone.ts';
import { messageEvent, recordEvents, STATUSES, type StatusMachine } from './status-machine.ts';
import { transaction } from '../storage/transactions.ts';

export const CHANNELS = ['sms', 'mms', 'voice', 'rvm'] as const;
export const PURPOSES = ['transactional', 'marketing'] as const;
const TEXT_FIELDS = ['body', 'message', 'text', 'content'] as const;
const MAX_SCHEDULE_AHEAD_MS = 35 * 86400_000;
const MAX_VALIDITY_S = 30 * 86400;
const MAX_TEXT_CHARS = 1600;
export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;

export interface MessageSettings {
  maxSegments: number;
  defaultValiditySeconds: number;
  allowPrivateUrls: boolean;
}

export interface PreparedMessage {
  row: MessageRow;
  idempotencyKey: string | null;
  requestHash: string;
  /** Why a message that asked to go now was scheduled (quiet hours), for its first event. */
  held?: { reason: 'quiet_hours'; time_zone: string | null };
  /** More for the first event's data (an MMS fallback to SMS). */
  firstEvent?: Record<string, unknown>;
  /**
   * Rows another module keeps beside the message (src/twilio-compat: its StatusCallback),
   * written in the message's own transaction, so they exist exactly when the message does.
   * Not run for an idempotent replay.
   */
  alsoWrite?: (tx: Tx) => Promise<void>;
}

/** Returns the message input with `template` rendered into `body` (and recorded in metadata). */
export type TemplateHook = (principal: Principal, input: Record<string, unknown>) => Promise<Record<string, unknown>>;

/** The refusal for a text-only voice/rvm message on these connectors, or null when it can go. */
export type SpeechCheck = (connectorIds: string[], channel: string) => AppError | null;

export type CommitResult = { ok: true; message: MessageView; replayed: boolean } | { ok: false; error: AppError };

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class MessageService {
  private acceptedListeners: Array<(rows: MessageRow[]) => void> = [];
  /** Read on every send; see read-cache.ts for how fresh they are. */
  private defaultSenders;
  private messagingSettings;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private settings: MessageSettings,
    private consent: ConsentService,
    private router: Router,
    private statuses: StatusMachine,
    private senderPools?: SenderPools,
  ) {
    this.defaultSenders = readCache<string | null>(storage);
    this.messagingSettings = readCache<MessagingSettings>(storage);
  }

  onAccepted(fn: (rows: MessageRow[]) => void): void {
    this.acceptedListeners.push(fn);
  }

  private speechCheck: SpeechCheck | null = null;

  /**
   * Text to speech (src/media): a voice or rvm message given only text, on routes whose
   * connectors need audio, is refused here when no text-to-speech program can render it.
   */
  checkSpeechWith(fn: SpeechCheck): void {
    this.speechCheck = fn;
  }

  private templateHook: TemplateHook | null = null;

  /** Templates (src/templates) turn a message's `template` into its body before the text checks. */
  resolveTemplatesWith(fn: TemplateHook): void {
    this.templateHook = fn;
  }

  private renderTemplate(principal: Principal, input: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!this.templateHook) throw validation('template', 'Templates are not available on this server: send a body.');
    return this.templateHook(principal, input);
  }

  /**
   * Every check that can refuse the message. Throws AppError; writes nothing. `known` is the
   * consent of the recipients when the caller read it for many messages at once (a batch).
   */
  async prepare(principal: Principal, raw: unknown, idempotencyKey: string | null = null, known?: ConsentView): Promise<PreparedMessage> {
    if (!isPlainObject(raw)) throw validation('body', 'The request body must be a JSON object.');
    const input = raw.template !== undefined && raw.template !== null ? await this.renderTemplate(principal, raw) : raw;
    const now = this.clock.now();

    const channel = input.channel ?? 'sms';
    if (typeof channel !== 'string' || !(CHANNELS as readonly string[]).includes(channel)) {
      throw validation('channel', `channel must be one of ${CHANNELS.join(', ')}.`, { allowed: CHANNELS });
    }

    const given = TEXT_FIELDS.filter((f) => input[f] !== undefined && input[f] !== null);
    if (given.length > 1) throw validation(given[1], `Give the text once: ${given.join(' and ')} are aliases of body.`, { fields: given });
    const text = given.length ? input[given[0]] : undefined;
    const textField = given[0] ?? 'body';
    if (text !== undefined && typeof text !== 'string') throw validation(textField, `${textField} must be a string.`);

    let mediaUrls: string[] = [];
    if (input.media_urls !== undefined && input.media_urls !== null) {
      if (!Array.isArray(input.media_urls) || input.media_urls.length > 10) throw validation('media_urls', 'media_urls must be an array of at most 10 URLs.');
      mediaUrls = input.media_urls.map((u, i) => checkUrl(u, `media_urls[${i}]`, this.settings.allowPrivateUrls));
    }
    if (channel === 'sms' && mediaUrls.length) throw validation('media_urls', 'media_urls need channel "mms".');
    if (channel === 'mms' && mediaUrls.length === 0) throw validation('media_urls', 'An mms message needs at least one media URL.');
    if ((channel === 'sms' || channel === 'voice' || channel === 'rvm') && (text === undefined || text === '') && mediaUrls.length === 0) {
      throw validation(textField, `${textField} is required: give the text as body (or message, text, content).`);
    }
    if (typeof text === 'string' && text.length > MAX_TEXT_CHARS) {
      throw validation(textField, `${textField} is longer than ${MAX_TEXT_CHARS} characters.`, { length: text.length, max: MAX_TEXT_CHARS });
    }
    const body = typeof text === 'string' && text !== '' ? text : null;
    const info = analyseText(body ?? '');
    const segments = channel === 'sms' ? info.segments : 1;
    if (channel === 'sms' && info.segments > this.settings.maxSegments) {
      throw validation(textField, `${textField} needs ${info.segments} ${info.encoding} segments; the limit is ${this.settings.maxSegments}.`, {
        segments: info.segments,
        max_segments: this.settings.maxSegments,
        encoding: info.encoding,
      });
    }

    if (input.to === undefined || input.to === null || input.to === '') throw validation('to', 'to is required.');
    if (typeof input.to !== 'string') throw validation('to', 'to must be a string.');
    const to = normaliseNumber(input.to, 'to').e164;

    const purpose = input.purpose ?? 'transactional';
    if (typeof purpose !== 'string' || !(PURPOSES as readonly string[]).includes(purpose)) {
      throw validation('purpose', `purpose must be one of ${PURPOSES.join(', ')}.`);
    }

    let sendAt: number | null = null;
    if (input.send_at !== undefined && input.send_at !== null) {
      if (typeof input.send_at !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(input.send_at) || Number.isNaN(Date.parse(input.send_at))) {
        throw validation('send_at', 'send_at must be an ISO 8601 date and time, such as 2026-05-01T09:00:00Z.');
      }
      sendAt = Date.parse(input.send_at);
      if (sendAt - now > MAX_SCHEDULE_AHEAD_MS) throw validation('send_at', 'send_at can be at most 35 days ahead.');
      if (sendAt <= now) sendAt = null;
    }

    let validity = this.settings.defaultValiditySeconds;
    if (input.validity_period !== undefined && input.validity_period !== null) {
      if (typeof input.validity_period !== 'number' || !Number.isInteger(input.validity_period) || input.validity_period < 1 || input.validity_period > MAX_VALIDITY_S) {
        throw validation('validity_period', `validity_period must be a whole number of seconds from 1 to ${MAX_VALIDITY_S}.`);
      }
      validity = input.validity_period;
    }

    let statusCallback: string | null = null;
    if (input.status_callback !== undefined && input.status_callback !== null) {
      statusCallback = checkUrl(input.status_callback, 'status_callback', this.settings.allowPrivateUrls);
    }

    const metadata: Record<string, string> = {};
    if (input.metadata !== undefined && input.metadata !== null) {
      if (!isPlainObject(input.metadata)) throw validation('metadata', 'metadata must be an object of strings.');
      const entries = Object.entries(input.metadata);
      if (entries.length > 50) throw validation('metadata', 'metadata can hold at most 50 keys.');
      for (const [k, v] of entries) {
        if (k.length === 0 || k.length > 40 || k === '__proto__' || k === 'constructor' || k === 'prototype') throw validation(`metadata.${k}`, 'metadata keys must be 1 to 40 characters and not reserved names.');
        if (typeof v !== 'string' || v.length > 500) throw validation(`metadata.${k}`, 'metadata values must be strings of at most 500 characters.');
        metadata[k] = v;
      }
    }

    const from = await this.resolveSender(principal.accountId, input.from, { to, channel, poolId: input.sender_pool_id });

    const db = this.storage.read;
    const consent = known ?? (await this.consent.view(db, principal.accountId, principal.mode, [to]));
    const suppressed = consent.suppression(to);
    if (suppressed?.reason === 'invalid_number') {
      throw new AppError('INVALID_NUMBER', `${to} was reported not in service by the carrier; it is suppressed for this account.`, { field: 'to', value: to, suppressed: true });
    }
    if (suppressed) throw new AppError('OPTED_OUT', `${to} has opted out of messages from this account; nothing was sent.`, { to, source: suppressed.source });
    if (purpose !== 'marketing' && consent.status(to, purpose, channel) === 'opted_out') {
      throw new AppError('OPTED_OUT', `${to} has opted out of ${purpose} ${channel} messages from this account; nothing was sent.`, { to, purpose, channel });
    }
    if (purpose === 'marketing') {
      const state = consent.status(to, 'marketing', channel);
      if (state === 'opted_out') throw new AppError('OPTED_OUT', `${to} has opted out of marketing ${channel}; nothing was sent.`, { to, purpose });
      if (state !== 'opted_in') throw new AppError('CONSENT_REQUIRED', `A marketing message needs an opted_in marketing consent record for ${to}.`, { to, purpose });
    }
    // Country rules, and quiet hours for marketing: a message that would land in them is held.
    const settings = await this.messagingSettings.get(principal.accountId, () => readMessagingSettings(db, principal.accountId));
    const rules = await this.consent.outboundRules(db, { accountId: principal.accountId, mode: principal.mode, to, purpose, at: sendAt ?? now }, settings);
    if (rules.heldFor) sendAt = rules.sendAt;
    // An MMS that no route carries as media may go as SMS with links, or is refused: mms-fallback.ts.
    const plan = await planRoute(this.router, db, { accountId: principal.accountId, mode: principal.mode, channel, to, purpose, from }, { body, mediaUrls }, this.settings.maxSegments);
    if (plan.kind === 'mms_not_supported') throw new AppError('FILTERED', plan.message, plan.details);
    if (plan.connectors.length === 0) throw new AppError('FILTERED', `No route carries ${channel} to ${to} for this account.`, { to, channel, reason: 'no_route' });
    if ((channel === 'voice' || channel === 'rvm') && mediaUrls.length === 0 && this.speechCheck) {
      const refusal = this.speechCheck(plan.connectors, channel);
      if (refusal) throw refusal;
    }
    const fallback = plan.kind === 'sms_fallback' ? plan : null;

    const id = newId('msg', now);
    const row: MessageRow = messageRow({
      id,
      account_id: principal.accountId,
      mode: principal.mode,
      direction: 'outbound',
      channel,
      to_addr: to,
      from_addr: from,
      body,
      media_urls: mediaUrls.length ? JSON.stringify(mediaUrls) : null,
      status: sendAt ? 'scheduled' : 'queued',
      segments,
      encoding: info.encoding,
      purpose,
      metadata: JSON.stringify(metadata),
      status_callback: statusCallback,
      send_at: sendAt,
      expires_at: (sendAt ?? now) + validity * 1000,
      next_attempt_at: sendAt ?? now,
      created_at: now,
      updated_at: now,
      ...fallback?.patch,
    });
    const held = rules.heldFor ? { reason: rules.heldFor, time_zone: rules.timeZone } : undefined;
    return { row, idempotencyKey, requestHash: createHash('sha256').update(canonicalJson(input)).digest('hex'), held, firstEvent: fallback?.event };
  }

  private async resolveSender(accountId: string, from: unknown, target: PoolTarget): Promise<string | null> {
    // A sender pool (named, or the account's default) picks the number: sender-pools.ts.
    const pooled = await this.senderPools?.resolve(accountId, from, target);
    if (pooled !== undefined) return pooled;
    const db = this.storage.read;
    if (from === undefined || from === null || from === '') {
      return this.defaultSenders.get(accountId, async () => {
        const def = await db.selectFrom('senders').select('address').where('account_id', '=', accountId).orderBy('is_default', 'desc').orderBy('created_at').limit(1).executeTakeFirst();
        return def?.address ?? null;
      });
    }
    if (typeof from !== 'string') throw validation('from', 'from must be a string.');
    const phone = parseNumber(from);
    const address = phone ? phone.e164 : from.trim();
    if (!phone && !isAlphanumericSender(address)) throw validation('from', 'from must be a phone number or an alphanumeric sender id of this account.');
    const sender = await db.selectFrom('senders').select('address').where('account_id', '=', accountId).where('address', '=', address).executeTakeFirst();
    if (!sender) throw validation('from', `${address} is not a sender of this account.`, { value: address });
    return sender.address;
  }

  /**
   * Writes prepared messages. Each item succeeds or fails on its own (an idempotency conflict
   * fails only its item), and this returns only after the transaction holding them committed.
   *
   * Group commit: calls that arrive while a transaction is being written wait and are written
   * together in the next one, so fifty concurrent requests cost a handful of commits, not fifty.
   * Each caller is still answered only after ITS rows are committed. If a group's transaction
   * fails, every call in it is retried alone, so one caller's bad data never fails another's.
   */
  commit(items: PreparedMessage[]): Promise<CommitResult[]> {
    return new Promise((resolve, reject) => {
      this.pending.push({ items, resolve, reject });
      // The write waits for the end of this turn of the event loop (setImmediate: no timer, no
      // added latency when idle), so every request whose checks finished in this turn joins the
      // group. On SQLite a write never waits for I/O, so without this pause each write would
      // finish before the next request's checks did, and every group would hold one message.
      // Calls that arrive while a write is under way form the next group.
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private pending: Array<{ items: PreparedMessage[]; resolve: (r: CommitResult[]) => void; reject: (e: unknown) => void }> = [];
  private flushing = false;

  private async flush(): Promise<void> {
    try {
      while (this.pending.length) {
        // Bounded groups keep one transaction (and the SQLite write lock) short.
        let count = 0;
        let take = 0;
        while (take < this.pending.length && (take === 0 || count + this.pending[take].items.length <= 2000)) count += this.pending[take++].items.length;
        const calls = this.pending.splice(0, take);
        try {
          const results = await this.write(calls.map((c) => c.items));
          calls.forEach((c, i) => c.resolve(results[i]));
        } catch (err) {
          if (calls.length === 1) {
            calls[0].reject(err);
            continue;
          }
          for (const c of calls) {
            try {
              c.resolve((await this.write([c.items]))[0]);
            } catch (e) {
              c.reject(e);
            }
          }
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async write(groups: PreparedMessage[][]): Promise<CommitResult[][]> {
    const now = this.clock.now();
    const fresh: PreparedMessage[] = [];
    const results = await transaction(this.storage.db, async (tx) => {
      // Keys written earlier in this same transaction are not in the table yet.
      const inThisCommit = new Map<string, PreparedMessage>();
      const out: CommitResult[][] = [];
      for (const items of groups) {
        const group: CommitResult[] = [];
        for (const item of items) {
          if (item.idempotencyKey) {
            const k = `${item.row.account_id}\u0000${item.row.mode}\u0000${item.idempotencyKey}`;
            const earlier = inThisCommit.get(k);
            if (earlier) {
              group.push(
                earlier.requestHash === item.requestHash
                  ? { ok: true, message: toMessageView(earlier.row), replayed: true }
                  : { ok: false, error: new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was used with a different request.', { idempotency_key: item.idempotencyKey, message_id: earlier.row.id }) },
              );
              continue;
            }
            const replay = await this.checkIdempotency(tx, item, now);
            if (replay) {
              group.push(replay);
              continue;
            }
            inThisCommit.set(k, item);
          }
          fresh.push(item);
          group.push({ ok: true, message: toMessageView(item.row), replayed: false });
        }
        out.push(group);
      }
      if (fresh.length) await this.insertAccepted(tx, fresh, now);
      for (const f of fresh) if (f.alsoWrite) await f.alsoWrite(tx);
      return out;
    });
    if (fresh.length) {
      const rows = fresh.map((f) => f.row);
      for (const fn of this.acceptedListeners) fn(rows);
    }
    return results;
  }

  private async checkIdempotency(tx: Tx, item: PreparedMessage, now: number): Promise<CommitResult | null> {
    const key = item.idempotencyKey!;
    const existing = await tx
      .selectFrom('idempotency_keys')
      .selectAll()
      .where('account_id', '=', item.row.account_id)
      .where('mode', '=', item.row.mode)
      .where('key', '=', key)
      .executeTakeFirst();
    if (!existing) return null;
    if (existing.created_at < now - IDEMPOTENCY_TTL_MS) {
      await tx.deleteFrom('idempotency_keys').where('account_id', '=', existing.account_id).where('mode', '=', existing.mode).where('key', '=', key).execute();
      return null;
    }
    if (existing.request_hash !== item.requestHash) {
      return { ok: false, error: new AppError('IDEMPOTENCY_CONFLICT', 'This Idempotency-Key was used with a different request.', { idempotency_key: key, message_id: existing.message_id }) };
    }
    const row = await tx.selectFrom('messages').selectAll().where('id', '=', existing.message_id).executeTakeFirstOrThrow();
    return { ok: true, message: toMessageView(row), replayed: true };
  }

  private async insertAccepted(tx: Tx, items: PreparedMessage[], now: number): Promise<void> {
    const rows = items.map((i) => i.row);
    // Chunked so that a large group stays under SQLite's bound-parameter limit.
    for (let i = 0; i < rows.length; i += 100) await tx.insertInto('messages').values(rows.slice(i, i + 100)).execute();
    for (let i = 0; i < items.length; i += 500) {
      const chunk = items.slice(i, i + 500);
      await recordEvents(
        tx,
        chunk.map(({ row: r, held, firstEvent }) => ({
          messageId: r.id,
          status: r.status,
          at: now,
          data: {
            ...(r.status === 'scheduled' ? { send_at: new Date(r.send_at!).toISOString(), ...(held ? { held_for: held.reason, time_zone: held.time_zone } : {}) } : { source: 'api' }),
            ...firstEvent,
          },
        })),
      );
      await appendOutbox(
        tx,
        chunk.filter(({ row }) => row.status === 'queued').map(({ row }) => messageEvent(row, 'message.queued', now)),
      );
    }
    const keyed = items.filter((it) => it.idempotencyKey);
    for (let i = 0; i < keyed.length; i += 100) {
      await tx
        .insertInto('idempotency_keys')
        .values(keyed.slice(i, i + 100).map((it) => ({ account_id: it.row.account_id, mode: it.row.mode, key: it.idempotencyKey!, request_hash: it.requestHash, message_id: it.row.id, created_at: now })))
        .execute();
    }
  }

  /**
   * A message the platform sends by itself (a keyword reply), accepted inside the caller's
   * transaction so it commits with what caused it. It skips the API's consent checks on purpose:
   * the caller decides who may get it (see inbox-service.ts). Returns null when no route carries it.
   */
  async acceptInternal(tx: Tx, m: { accountId: string; mode: string; to: string; from: string | null; body: string; metadata?: Record<string, string> }): Promise<MessageRow | null> {
    const now = this.clock.now();
    const routes = await this.router.candidates({ accountId: m.accountId, mode: m.mode, channel: 'sms', to: m.to, purpose: 'transactional', from: m.from }, tx);
    if (routes.length === 0) return null;
    const info = analyseText(m.body);
    const row: MessageRow = messageRow({
      id: newId('msg', now),
      account_id: m.accountId,
      mode: m.mode,
      direction: 'outbound',
      channel: 'sms',
      to_addr: m.to,
      from_addr: m.from,
      body: m.body,
      status: 'queued',
      segments: info.segments,
      encoding: info.encoding,
      purpose: 'transactional',
      metadata: JSON.stringify(m.metadata ?? {}),
      expires_at: now + this.settings.defaultValiditySeconds * 1000,
      next_attempt_at: now,
      created_at: now,
      updated_at: now,
    });
    await this.insertAccepted(tx, [{ row, idempotencyKey: null, requestHash: '' }], now);
    return row;
  }

  async send(principal: Principal, input: unknown, idempotencyKey: string | null = null): Promise<{ message: MessageView; replayed: boolean }> {
    const prepared = await this.prepare(principal, input, idempotencyKey);
    const [result] = await this.commit([prepared]);
    if (!result.ok) throw result.error;
    return { message: result.message, replayed: result.replayed };
  }

  async sendBatch(principal: Principal, inputs: unknown): Promise<Array<{ index: number; message: MessageView } | { index: number; error: AppError }>> {
    if (!Array.isArray(inputs)) throw validation('messages', 'messages must be an array.');
    if (inputs.length === 0 || inputs.length > 1000) throw validation('messages', 'messages must hold 1 to 1,000 messages.', { count: inputs.length });
    const out: Array<{ index: number; message: MessageView } | { index: number; error: AppError }> = [];
    const prepared: Array<{ index: number; item: PreparedMessage }> = [];
    // The recipients' consent in two queries for the whole batch, not two per message.
    const phones = inputs.map((raw) => (isPlainObject(raw) ? parseNumber(raw.to)?.e164 : undefined)).filter((p): p is string => p !== undefined);
    const known = await this.consent.view(this.storage.read, principal.accountId, principal.mode, phones);
    for (let index = 0; index < inputs.length; index++) {
      try {
        const raw = inputs[index];
        const key = isPlainObject(raw) && typeof raw.idempotency_key === 'string' ? raw.idempotency_key : null;
        const input = isPlainObject(raw) ? { ...raw } : raw;
        if (isPlainObject(input)) delete input.idempotency_key;
        prepared.push({ index, item: await this.prepare(principal, input, key, known) });
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        out.push({ index, error: err });
      }
    }
    if (prepared.length) {
      const results = await this.commit(prepared.map((p) => p.item));
      results.forEach((r, i) => out.push(r.ok ? { index: prepared[i].index, message: r.message } : { index: prepared[i].index, error: r.error }));
    }
    return out.sort((a, b) => a.index - b.index);
  }

  async getRow(principal: Principal, id: string): Promise<MessageRow> {
    const row = await this.storage.db
      .selectFrom('messages')
      .selectAll()
      .where('id', '=', id)
      .where('account_id', '=', principal.accountId)
      .where('mode', '=', principal.mode)
      .executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No message ${id} in this account.`, { id });
    return row;
  }

  async get(principal: Principal, id: string): Promise<MessageView> {
    return visibleTo(principal, toMessageView(await this.getRow(principal, id)));
  }

  async events(principal: Principal, id: string) {
    await this.getRow(principal, id);
    const rows = await this.storage.db.selectFrom('message_events').selectAll().where('message_id', '=', id).orderBy('id').execute();
    return rows.map((e) => {
      const raw = JSON.parse(e.data);
      const { data, redacted } = eventDataVisibleTo(principal, raw);
      return { status: e.status, at: new Date(e.at).toISOString(), data, ignored: raw.ignored === true, ...(redacted ? { data_redacted: true as const } : {}) };
    });
  }

  async list(principal: Principal, q: Record<string, string | number | undefined>) {
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw validation('limit', 'limit must be a whole number from 1 to 1000.');
    let query = this.storage.db.selectFrom('messages').selectAll().where('account_id', '=', principal.accountId).where('mode', '=', principal.mode);
    if (q.status !== undefined) {
      const statuses = String(q.status).split(',');
      for (const s of statuses) if (!(STATUSES as readonly string[]).includes(s)) throw validation('status', `Unknown status ${s}.`, { allowed: STATUSES });
      query = query.where('status', 'in', statuses);
    }
    if (q.direction !== undefined) {
      if (q.direction !== 'inbound' && q.direction !== 'outbound') throw validation('direction', 'direction must be inbound or outbound.');
      query = query.where('direction', '=', q.direction);
    }
    if (q.channel !== undefined) {
      if (!(CHANNELS as readonly string[]).includes(String(q.channel))) throw validation('channel', `channel must be one of ${CHANNELS.join(', ')}.`);
      query = query.where('channel', '=', String(q.channel));
    }
    if (q.error_class !== undefined) {
      if (!(ERROR_CLASSES as readonly string[]).includes(String(q.error_class))) throw validation('error_class', `error_class must be one of ${ERROR_CLASSES.join(', ')}.`);
      query = query.where('error_class', '=', String(q.error_class));
    }
    if (q.to !== undefined) query = query.where('to_addr', '=', normaliseNumber(q.to, 'to').e164);
    if (q.from !== undefined) {
      const p = parseNumber(q.from);
      query = query.where('from_addr', '=', p ? p.e164 : String(q.from));
    }
    for (const [field, op] of [['since', '>='], ['until', '<']] as const) {
      const v = q[field];
      if (v === undefined) continue;
      const t = Date.parse(String(v));
      if (Number.isNaN(t)) throw validation(field, `${field} must be an ISO 8601 date.`);
      query = query.where('created_at', op, t);
    }
    if (q.cursor !== undefined) {
      const c = String(q.cursor);
      if (!/^msg_[0-9a-z]{26}$/.test(c)) throw validation('cursor', 'cursor is not one this API returned.');
      query = query.where('id', '<', c);
    }
    const rows = await query.orderBy('id', 'desc').limit(limit + 1).execute();
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return { data: page.map((r) => visibleTo(principal, toMessageView(r))), next_cursor: more ? page[page.length - 1].id : null };
  }

  async cancel(principal: Principal, id: string): Promise<MessageView> {
    const now = this.clock.now();
    const updated = await transaction(this.storage.db, async (tx) => {
      const row = await tx.selectFrom('messages').selectAll().where('id', '=', id).where('account_id', '=', principal.accountId).where('mode', '=', principal.mode).executeTakeFirst();
      if (!row) throw new AppError('NOT_FOUND', `No message ${id} in this account.`, { id });
      if (row.status !== 'scheduled' && row.status !== 'queued') {
        throw validation('status', `Only scheduled or queued messages can be canceled; this one is ${row.status}.`, { status: row.status });
      }
      return this.statuses.transition(tx, row, 'canceled', { at: now, data: { reason: 'canceled_by_request' }, patch: { next_attempt_at: null } });
    });
    return visibleTo(principal, toMessageView(updated!));
  }
}
