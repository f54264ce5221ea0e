// Body retention (issue 9): an account with `body_retention_days` set has, after that many days,
// each message's body, media references and raw provider payloads removed. The message row, its
// statuses and its timeline stay (so delivery reports and audits still add up); what is removed:
//   messages        — body and media_urls set to NULL, redacted_at set;
//   message_events  — each event's `raw` provider data (it carries inbound text and SMPP receipt
//                     text) and any body/text/media in it;
//   outbox          — the message object in every event payload loses its body and media, so a
//                     later retry or replay of a webhook sends none;
//   pending_receipts— held receipts of the message are deleted;
//   webhook_attempts— the receivers' answers to its webhooks (which may echo the payload).
// `redactMessages()` is that list, and the one function for it: the Twilio-compatible API's
// redaction (Body="") and deletion call it too.
//
// The sweep is a durable loop: each account and mode has a cursor row (retention_cursors) that
// walks its messages by id (ids are time-ordered) up to the cutoff, in bounded batches, one
// transaction each. A message not yet final when its time comes (scheduled far ahead, or still
// waiting for a receipt) is parked in retention_deferred and redacted once it is final, so the
// cursor never waits on it.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { idFloor } from '../ids.ts';
import { FINAL_STATUSES } from '../messages/status-machine.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import type { WebhookTx } from '../webhooks/webhook-tables.ts';
import { redactWorkflowCopies } from '../workflows/workflow-redaction.ts';
import { BackgroundLoop } from './background-loop.ts';
import { dataSettingsOf } from './data-settings.ts';

const DAY_MS = 86_400_000;
const MODES = ['test', 'live'] as const;

/** What redaction leaves of an event's data: everything but the provider's raw payload and any text. */
export function scrubEventData(data: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    if (k === 'raw' || k === 'body' || k === 'text' || k === 'media_urls') continue;
    out[k] = v && typeof v === 'object' && !Array.isArray(v) ? scrubEventData(v as Record<string, unknown>) : v;
  }
  out.redacted = true;
  return out;
}

/** A message object (as in webhook payloads) without its body and media. */
export function withoutBody<T extends Record<string, unknown>>(message: T): T {
  return { ...message, body: null, media_urls: [], body_redacted: true };
}

export class RetentionSweeper {
  private loop: BackgroundLoop;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private log: Logger,
    private opts: { batch?: number; pollMs?: number } = {},
  ) {
    this.loop = new BackgroundLoop('retention sweep', () => this.runOnce(), log, opts.pollMs ?? 60_000, 20);
  }

  private get batch(): number {
    return this.opts.batch ?? 500;
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  /** One bounded step for every account with a retention period. Returns messages handled. */
  async runOnce(): Promise<number> {
    const now = this.clock.now();
    const accounts = await this.storage.db.selectFrom('accounts').select(['id', 'settings']).execute();
    let handled = 0;
    for (const a of accounts) {
      let all: Record<string, unknown> = {};
      try {
        all = JSON.parse(a.settings);
      } catch {
        continue;
      }
      const days = dataSettingsOf(all).body_retention_days;
      if (days === null) continue;
      const cutoff = idFloor('msg', now - days * DAY_MS);
      for (const mode of MODES) handled += await this.sweepAccount(a.id, mode, cutoff, now);
    }
    handled += await this.sweepDeferred(now);
    return handled;
  }

  private async sweepAccount(accountId: string, mode: string, cutoff: string, now: number): Promise<number> {
    return transaction(this.storage.db, async (tx) => {
      const pos = await tx.selectFrom('retention_cursors').select('cursor').where('account_id', '=', accountId).where('mode', '=', mode).executeTakeFirst();
      const from = pos?.cursor ?? '';
      if (from >= cutoff) return 0;
      const rows = await tx
        .selectFrom('messages')
        .select(['id', 'status', 'redacted_at'])
        .where('account_id', '=', accountId)
        .where('mode', '=', mode)
        .where('id', '>', from)
        .where('id', '<', cutoff)
        .orderBy('id')
        .limit(this.batch)
        .execute();
      if (rows.length === 0) {
        // Nothing more below the cutoff: the next pass starts there.
        await this.moveCursor(tx, accountId, mode, cutoff, now, pos !== undefined);
        return 0;
      }
      const ready = rows.filter((r) => FINAL_STATUSES.has(r.status) && r.redacted_at == null).map((r) => r.id);
      const waiting = rows.filter((r) => !FINAL_STATUSES.has(r.status));
      if (waiting.length) {
        await tx
          .insertInto('retention_deferred')
          .values(waiting.map((r) => ({ message_id: r.id, account_id: accountId, created_at: now })))
          .onConflict((oc) => oc.column('message_id').doNothing())
          .execute();
      }
      await this.redact(tx, ready, now);
      await this.moveCursor(tx, accountId, mode, rows.length < this.batch ? cutoff : rows[rows.length - 1].id, now, pos !== undefined);
      return rows.length;
    });
  }

  private async moveCursor(tx: Tx, accountId: string, mode: string, cursor: string, now: number, exists: boolean): Promise<void> {
    if (exists) await tx.updateTable('retention_cursors').set({ cursor, updated_at: now }).where('account_id', '=', accountId).where('mode', '=', mode).execute();
    else await tx.insertInto('retention_cursors').values({ account_id: accountId, mode, cursor, updated_at: now }).execute();
  }

  /** Parked messages that have become final are redacted now. */
  private async sweepDeferred(now: number): Promise<number> {
    // Almost always empty: a read, not a write transaction, when there is nothing to do.
    if (!(await this.storage.db.selectFrom('retention_deferred').select('message_id').limit(1).executeTakeFirst())) return 0;
    return transaction(this.storage.db, async (tx) => {
      const parked = await tx
        .selectFrom('retention_deferred as d')
        .innerJoin('messages as m', 'm.id', 'd.message_id')
        .select(['d.message_id', 'm.status'])
        .orderBy('d.message_id')
        .limit(this.batch)
        .execute();
      const ready = parked.filter((r) => FINAL_STATUSES.has(r.status)).map((r) => r.message_id);
      if (ready.length === 0) return 0;
      await this.redact(tx, ready, now);
      await tx.deleteFrom('retention_deferred').where('message_id', 'in', ready).execute();
      return ready.length;
    });
  }

  /** Removes the bodies, media and raw payloads of these (final) messages, in `tx`. */
  async redact(tx: Tx, ids: string[], now: number): Promise<void> {
    await redactMessages(tx, ids, now);
    this.log.debug({ messages: ids.length }, 'retention: bodies removed');
  }
}

/**
 * Removes everything that carries the text of these messages, in `tx` (see the list at the top):
 * the message keeps its row, statuses and timeline, and shows `body_redacted`. The caller checks
 * tenancy and that the messages are final. Done again, it changes nothing.
 */
export async function redactMessages(tx: Tx, ids: string[], now: number): Promise<void> {
  if (ids.length === 0) return;
  await tx.updateTable('messages').set({ body: null, media_urls: null, redacted_at: now, updated_at: now }).where('id', 'in', ids).execute();
  const events = await tx.selectFrom('message_events').select(['id', 'data']).where('message_id', 'in', ids).execute();
  for (const e of events) {
    const data = JSON.parse(e.data) as Record<string, unknown>;
    if (data.redacted === true) continue;
    await tx.updateTable('message_events').set({ data: JSON.stringify(scrubEventData(data)) }).where('id', '=', e.id).execute();
  }
  const outbox = await tx.selectFrom('outbox').select(['id', 'payload']).where('message_id', 'in', ids).execute();
  for (const o of outbox) {
    const payload = JSON.parse(o.payload) as { data?: Record<string, unknown> };
    if (!payload.data || !('body' in payload.data) || payload.data.body_redacted === true) continue;
    await tx.updateTable('outbox').set({ payload: JSON.stringify({ ...payload, data: withoutBody(payload.data) }) }).where('id', '=', o.id).execute();
  }
  await tx.deleteFrom('pending_receipts').where('message_id', 'in', ids).execute();
  await redactWorkflowCopies(tx, ids);
  // Two lookups, each matching one partial index (002's pending one, 016's for the rest).
  const wtx = tx as unknown as WebhookTx;
  const deliveries = [
    ...(await wtx.selectFrom('webhook_deliveries').select('id').where('status', '=', 'pending').where('message_id', 'in', ids).execute()),
    ...(await wtx.selectFrom('webhook_deliveries').select('id').where('status', '<>', 'pending').where('message_id', 'is not', null).where('message_id', 'in', ids).execute()),
  ].map((d) => d.id);
  for (let i = 0; i < deliveries.length; i += 500) {
    await wtx
      .updateTable('webhook_attempts')
      .set({ response_body: null })
      .where('delivery_id', 'in', deliveries.slice(i, i + 500))
      .where('response_body', 'is not', null)
      .execute();
  }
}
