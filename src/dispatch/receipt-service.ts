// What comes back from carriers: delivery receipts and inbound messages.
//
// Receipts are the source of truth for `delivered`/`undelivered`. A receipt can arrive before
// the submit's answer has been recorded (real carriers do this): it is kept in
// pending_receipts and applied the moment the provider id becomes known. Both sides check
// again after their own commit, so whichever commits second applies it, on any database.
// A duplicate or late receipt never moves a message backwards; it is recorded as an event.
import type { Clock } from '../clock.ts';
import type { InboundMessage, Receipt } from '../connectors/connector.ts';
import type { ConsentService } from '../consent/consent-service.ts';
import type { ErrorClass } from '../errors.ts';
import { newId } from '../ids.ts';
import { messageRow, toMessageView, type MessageRow } from '../messages/message-view.ts';
import { parseNumber } from '../messages/phone.ts';
import { recordEvents, ConcurrentChangeError, type StatusMachine } from '../messages/status-machine.ts';
import { appendOutbox } from '../events/outbox.ts';
import { messageEvent } from '../messages/status-machine.ts';
import type { ReviewService } from '../review/review-service.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { analyseText } from '../messages/encoding.ts';
import type { Logger } from 'pino';
import { transaction, TxBatcher } from '../storage/transactions.ts';
import { voicePatch } from '../voice/voice-outcome.ts';

export { OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, keywordOf } from '../consent/messaging-settings.ts';

/**
 * What the inbox does with an inbound message inside the transaction that stores it
 * (inbox/inbox-service.ts): link the contact and conversation, then act on keywords.
 */
export interface InboundHandler {
  link(tx: Tx, row: MessageRow): Promise<{ contact: unknown; conversation_id: string } | null>;
  handleKeywords(tx: Tx, row: MessageRow): Promise<void>;
}
const MAX_INBOUND_CHARS = 1600;

/** Inbound text is stored as plain text only: control characters out, length capped. */
export function sanitiseInbound(body: string): string {
  // eslint-disable-next-line no-control-regex
  return body.replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069]/g, '').slice(0, MAX_INBOUND_CHARS);
}

export class ReceiptService {
  /** Receipts that arrive together (a carrier's burst, a drained queue) share one transaction. */
  private batch: TxBatcher;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private statuses: StatusMachine,
    private consent: ConsentService,
    private review: ReviewService,
    private log: Logger,
    private inbox: InboundHandler,
  ) {
    this.batch = new TxBatcher(storage.db);
  }

  async receipt(connectorId: string, r: Receipt): Promise<void> {
    const applied = await this.withRetry(async (tx) => {
      const row = await tx
        .selectFrom('messages')
        .selectAll()
        .where('connector_id', '=', connectorId)
        .where('provider_message_id', '=', r.providerMessageId)
        .executeTakeFirst();
      if (!row) {
        await tx
          .insertInto('pending_receipts')
          .values({ connector_id: connectorId, provider_message_id: r.providerMessageId, data: JSON.stringify(r), received_at: this.clock.now(), applied_at: null, message_id: null })
          .execute();
        return false;
      }
      await this.applyToRow(tx, row, r);
      return true;
    });
    if (!applied) await this.applyPending(connectorId, r.providerMessageId);
  }

  private pendingChecks: Array<{ connectorId: string; providerMessageId: string; done: (held: number[]) => void; failed: (e: unknown) => void }> = [];

  /**
   * The held receipts of these provider ids. Every submit outcome asks; almost always the answer
   * is none, so the questions asked in one turn of the event loop share one query.
   */
  private heldReceipts(connectorId: string, providerMessageId: string): Promise<number[]> {
    return new Promise((done, failed) => {
      if (this.pendingChecks.push({ connectorId, providerMessageId, done, failed }) > 1) return;
      setImmediate(() => {
        const checks = this.pendingChecks.splice(0);
        void (async () => {
          const found = new Map<string, number[]>();
          for (let i = 0; i < checks.length; i += 500) {
            const rows = await this.storage.db
              .selectFrom('pending_receipts')
              .select(['id', 'connector_id', 'provider_message_id'])
              .where('provider_message_id', 'in', checks.slice(i, i + 500).map((c) => c.providerMessageId))
              .where('applied_at', 'is', null)
              .orderBy('id')
              .execute();
            for (const r of rows) {
              const k = `${r.connector_id}\u0000${r.provider_message_id}`;
              found.set(k, [...(found.get(k) ?? []), r.id]);
            }
          }
          for (const c of checks) c.done(found.get(`${c.connectorId}\u0000${c.providerMessageId}`) ?? []);
        })().catch((err) => {
          for (const c of checks) c.failed(err);
        });
      });
    });
  }

  /** Applies held receipts for a provider id whose message is now known. */
  async applyPending(connectorId: string, providerMessageId: string): Promise<void> {
    const pending = (await this.heldReceipts(connectorId, providerMessageId)).map((id) => ({ id }));
    for (const p of pending) {
      await this.withRetry(async (tx) => {
        const row = await tx
          .selectFrom('messages')
          .selectAll()
          .where('connector_id', '=', connectorId)
          .where('provider_message_id', '=', providerMessageId)
          .executeTakeFirst();
        if (!row) return;
        const claimed = await tx.updateTable('pending_receipts').set({ applied_at: this.clock.now(), message_id: row.id }).where('id', '=', p.id).where('applied_at', 'is', null).executeTakeFirst();
        if (Number(claimed.numUpdatedRows) !== 1) return;
        const held = await tx.selectFrom('pending_receipts').select('data').where('id', '=', p.id).executeTakeFirstOrThrow();
        await this.applyToRow(tx, row, { ...JSON.parse(held.data), held: true });
      });
    }
  }

  private async withRetry<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let i = 0; ; i++) {
      try {
        return await this.batch.run(fn);
      } catch (err) {
        if (!(err instanceof ConcurrentChangeError) || i >= 3) throw err;
      }
    }
  }

  private async applyToRow(tx: Tx, row: MessageRow, r: Receipt & { held?: boolean }): Promise<void> {
    const now = this.clock.now();
    const error = r.errorClass
      ? { error_class: r.errorClass, error_code: r.code ?? r.errorClass, error_message: r.message ?? '', provider_code: r.providerCode ?? null }
      : {};
    const data = {
      receipt: r.status,
      provider_message_id: r.providerMessageId,
      held_until_submit_recorded: r.held === true,
      raw: r.raw ?? null,
      ...(r.errorClass ? { error_class: r.errorClass } : {}),
      ...(r.voice ? { voice: { outcome: r.voice.outcome, duration_s: r.voice.durationS ?? null, answered_by: r.voice.answeredBy ?? null } } : {}),
    };
    const voice = r.voice ? voicePatch(r.voice) : {};
    const moved = await this.statuses.transition(tx, row, r.status, { at: now, data, patch: { ...error, ...voice, lease_owner: null, lease_expires_at: null } });
    if (!moved || !r.errorClass) return;
    if (r.errorClass === 'FILTERED' || r.errorClass === 'UNKNOWN_ERROR') {
      await this.review.create(tx, { accountId: row.account_id, mode: row.mode, messageId: row.id, errorClass: r.errorClass, reason: r.message ?? `Carrier reported ${r.errorClass}` });
    } else if (r.errorClass === 'OPTED_OUT' || r.errorClass === 'INVALID_NUMBER') {
      await this.suppressFor(tx, row, r.errorClass, { message_id: row.id, provider_code: r.providerCode ?? null, via: 'receipt' });
    }
  }

  /**
   * The carrier says the number opted out or is not in service: suppress it for the account on
   * every channel. An opt-out is also a consent record (source `carrier`); a dead number is only
   * a suppression, since nobody withdrew consent.
   */
  async suppressFor(tx: Tx, row: MessageRow, errorClass: ErrorClass, evidence: Record<string, unknown>): Promise<void> {
    if (await this.consent.isSuppressed(tx, row.account_id, row.mode, row.to_addr)) return;
    if (errorClass === 'OPTED_OUT') {
      await this.consent.record(tx, {
        accountId: row.account_id,
        mode: row.mode,
        phone: row.to_addr,
        status: 'opted_out',
        purpose: 'all',
        channel: 'all',
        source: 'carrier',
        evidence: { ...evidence, reason: 'carrier_reported_opt_out' },
      });
    } else {
      await tx
        .insertInto('suppressions')
        .values({ account_id: row.account_id, mode: row.mode, phone: row.to_addr, reason: 'invalid_number', source: 'carrier', created_at: this.clock.now() })
        .onConflict((oc) => oc.columns(['account_id', 'mode', 'phone']).doNothing())
        .execute();
    }
  }

  /** An inbound (mobile-originated) message: stored, announced, and read for keywords. */
  async inbound(connectorId: string, m: InboundMessage): Promise<MessageRow | null> {
    const now = this.clock.now();
    let accountId = m.accountId;
    let mode = m.mode;
    if (!accountId && m.inReplyTo) {
      const original = await this.storage.db.selectFrom('messages').select(['account_id', 'mode']).where('id', '=', m.inReplyTo).executeTakeFirst();
      accountId = original?.account_id;
      mode = original?.mode;
    }
    const to = parseNumber(m.to)?.e164 ?? m.to;
    if (!accountId) {
      const sender = await this.storage.db.selectFrom('senders').select('account_id').where('address', '=', to).executeTakeFirst();
      accountId = sender?.account_id;
      mode = 'live';
    }
    if (!accountId || !mode) {
      this.log.warn({ connectorId, provider_message_id: m.providerMessageId }, 'inbound message to a number no account owns; dropped');
      return null;
    }
    const from = parseNumber(m.from)?.e164 ?? m.from.slice(0, 32);
    const body = sanitiseInbound(m.body ?? '');
    const info = analyseText(body);
    const row: MessageRow = messageRow({
      id: newId('msg', now),
      account_id: accountId,
      mode,
      direction: 'inbound',
      channel: m.channel ?? 'sms',
      to_addr: to,
      from_addr: from,
      body,
      media_urls: m.mediaUrls?.length ? JSON.stringify(m.mediaUrls) : null,
      status: 'received',
      segments: info.segments,
      encoding: info.encoding,
      purpose: 'transactional',
      provider_message_id: m.providerMessageId ?? null,
      connector_id: connectorId,
      metadata: JSON.stringify(m.inReplyTo ? { in_reply_to: m.inReplyTo } : {}),
      expires_at: null,
      next_attempt_at: null,
      created_at: now,
      updated_at: now,
    });
    return transaction(this.storage.db, async (tx) => {
      if (m.providerMessageId) {
        const dup = await tx
          .selectFrom('messages')
          .selectAll()
          .where('connector_id', '=', connectorId)
          .where('provider_message_id', '=', m.providerMessageId)
          .where('direction', '=', 'inbound')
          .executeTakeFirst();
        if (dup) return dup;
      }
      await tx.insertInto('messages').values(row).execute();
      await recordEvents(tx, [{ messageId: row.id, status: 'received', at: now, data: { raw: m.raw ?? null } }]);
      // The event carries the contact (with its owner) so receivers can route replies by owner.
      const link = await this.inbox.link(tx, row);
      await appendOutbox(tx, [{ ...messageEvent(row, 'message.received', now), data: { ...toMessageView(row), contact: link?.contact ?? null, conversation_id: link?.conversation_id ?? null } }]);
      await this.inbox.handleKeywords(tx, row);
      return row;
    });
  }
}
