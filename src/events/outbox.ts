// The outbox: every event that leaves the platform (webhooks, status callbacks) is first a row
// here, written in the SAME transaction as the change that caused it. If the change commits, the
// event exists; if it rolls back, the event never did. The webhook worker reads from here.
import type { Executor } from '../storage/database.ts';
import { insertDeferred } from '../storage/transactions.ts';

export const EVENT_TYPES = [
  'message.queued',
  'message.sent',
  'message.delivered',
  'message.undelivered',
  'message.failed',
  'message.expired',
  'message.canceled',
  'message.received',
  'contact.opted_out',
  'contact.opted_in',
  'review.created',
  'campaign.completed',
  'workflow.completed',
  'workflow.failed',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface OutboxEvent {
  accountId: string;
  mode: string;
  type: EventType;
  messageId?: string | null;
  data: unknown;
  at: number;
}

export async function appendOutbox(tx: Executor, events: OutboxEvent[]): Promise<void> {
  if (events.length === 0) return;
  await insertDeferred(
    tx,
    'outbox',
    events.map((e) => ({
      account_id: e.accountId,
      mode: e.mode,
      type: e.type,
      message_id: e.messageId ?? null,
      payload: JSON.stringify({ type: e.type, timestamp: new Date(e.at).toISOString(), data: e.data }),
      created_at: e.at,
    })),
  );
}
