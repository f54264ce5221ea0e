// The one place where a message's status changes.
//
// Words used here and in the dispatcher:
//   status     — where the message is in its life (CONTRACT §4).
//   transition — a change of status, written with its event (the timeline row) and its outbox
//                rows (webhooks) in the same transaction. Nothing else writes `messages.status`.
//   final      — delivered, undelivered, failed, expired, canceled: nothing moves a final message.
//
// Statuses move forward only. The single exception is the dispatcher's retry: an attempt that the
// carrier did not accept (sending) goes back to `queued` to wait for its next attempt. A receipt
// can never move a message backwards; a late or duplicate one is recorded as an event all the same.
import type { Tx } from '../storage/database.ts';
import { afterCommit, insertDeferred } from '../storage/transactions.ts';
import { appendOutbox, type EventType, type OutboxEvent } from '../events/outbox.ts';
import { toMessageView, type MessageRow } from './message-view.ts';
import { isVoiceChannel } from '../voice/voice-outcome.ts';

export const STATUSES = ['scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'expired', 'canceled', 'received'] as const;
export type Status = (typeof STATUSES)[number];

export const FINAL_STATUSES: ReadonlySet<string> = new Set(['delivered', 'undelivered', 'failed', 'expired', 'canceled', 'received']);

const RANK: Record<Status, number> = {
  scheduled: 0,
  queued: 1,
  sending: 2,
  sent: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  expired: 4,
  canceled: 4,
  received: 4,
};

const WEBHOOK_EVENT: Partial<Record<Status, EventType>> = {
  queued: 'message.queued',
  sent: 'message.sent',
  delivered: 'message.delivered',
  undelivered: 'message.undelivered',
  failed: 'message.failed',
  expired: 'message.expired',
  canceled: 'message.canceled',
  received: 'message.received',
};

export function canMove(from: string, to: Status, opts: { retry?: boolean } = {}): boolean {
  if (FINAL_STATUSES.has(from)) return false;
  if (opts.retry) return from === 'sending' && to === 'queued';
  return RANK[to] > RANK[from as Status];
}

export interface TransitionOptions {
  at: number;
  /** Raw provider data or the reason, kept on the event. */
  data?: Record<string, unknown>;
  /** Other columns to change with the status. */
  patch?: Partial<MessageRow>;
  retry?: boolean;
  /** Whether the change fires its message.* webhook (a retry's return to queued does not). */
  notify?: boolean;
}

export type TransitionListener = (row: MessageRow, from: string) => void;

export class StatusMachine {
  private listeners: TransitionListener[] = [];

  onTransition(fn: TransitionListener): void {
    this.listeners.push(fn);
  }

  /**
   * Moves `row` to `to` inside `tx`. Returns the updated row, or null when the move is not
   * allowed (then only the event is recorded, marked `ignored`). `row` must have been read in
   * this same transaction, or be known current: the update is guarded on the old status, and a
   * guard miss throws, so a concurrent change is never overwritten.
   */
  async transition(tx: Tx, row: MessageRow, to: Status, opts: TransitionOptions): Promise<MessageRow | null> {
    if (!canMove(row.status, to, { retry: opts.retry })) {
      await recordEvents(tx, [{ messageId: row.id, status: to, at: opts.at, data: { ...opts.data, ignored: true, current_status: row.status } }]);
      return null;
    }
    const patch: Partial<MessageRow> = { ...opts.patch, status: to, updated_at: opts.at };
    // A call that failed before any outcome was reported (refused at submit, failed in a
    // retry) still ends with an outcome: the message says the call failed.
    if (to === 'failed' && isVoiceChannel(row.channel) && row.direction === 'outbound' && !row.voice_outcome && patch.voice_outcome === undefined) {
      patch.voice_outcome = 'failed';
      patch.voice_duration_s = 0;
    }
    const res = await tx.updateTable('messages').set(patch).where('id', '=', row.id).where('status', '=', row.status).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new ConcurrentChangeError(row.id);
    const next: MessageRow = { ...row, ...patch };
    await recordEvents(tx, [{ messageId: row.id, status: to, at: opts.at, data: opts.data ?? {} }]);
    const type = WEBHOOK_EVENT[to];
    if (type && opts.notify !== false) await appendOutbox(tx, [messageEvent(next, type, opts.at)]);
    // After the commit: a rolled-back change is neither counted nor announced.
    const from = row.status;
    for (const fn of this.listeners) afterCommit(tx, () => fn(next, from));
    return next;
  }
}

export function messageEvent(row: MessageRow, type: EventType, at: number): OutboxEvent {
  return { accountId: row.account_id, mode: row.mode, type, messageId: row.id, data: toMessageView(row), at };
}

export function webhookEventFor(status: Status): EventType | undefined {
  return WEBHOOK_EVENT[status];
}

export interface EventInput {
  messageId: string;
  status: string;
  at: number;
  data: Record<string, unknown>;
}

export async function recordEvents(tx: Tx, events: EventInput[]): Promise<void> {
  if (events.length === 0) return;
  await insertDeferred(
    tx,
    'message_events',
    events.map((e) => ({ message_id: e.messageId, status: e.status, at: e.at, data: JSON.stringify(e.data) })),
  );
}

export class ConcurrentChangeError extends Error {
  constructor(id: string) {
    super(`message ${id} changed concurrently`);
  }
}
