// How the engine hears of the world: a webhook target kind (src/webhooks/webhook-worker.ts
// TargetKind) that makes no deliveries. In the fan-out transaction, which marks each outbox event
// fanned out exactly once, it copies the events a run may be waiting for into workflow_signals:
// receipts of messages that workflow steps sent, inbound messages, opt-outs. The copy commits with
// the mark or not at all, so no reply or receipt is lost across a restart, and none is seen twice.
import type { OutboxRow, TargetKind } from '../webhooks/webhook-worker.ts';
import type { WebhookTx } from '../webhooks/webhook-tables.ts';
import type { WorkflowTx } from './workflow-tables.ts';

const RECEIPTS = ['message.delivered', 'message.undelivered', 'message.failed', 'message.expired'];

export function workflowSignalKind(wake: () => void): TargetKind {
  return {
    prefix: 'wfsig:',
    async fanOut(raw: WebhookTx, events: OutboxRow[]) {
      const tx = raw as unknown as WorkflowTx;
      const wanted: OutboxRow[] = [];
      const receipts = events.filter((e) => RECEIPTS.includes(e.type) && e.message_id);
      if (receipts.length) {
        const ours = await tx.selectFrom('workflow_steps').select('message_id').where('message_id', 'in', [...new Set(receipts.map((e) => e.message_id!))]).execute();
        const ids = new Set(ours.map((r) => r.message_id));
        wanted.push(...receipts.filter((e) => ids.has(e.message_id)));
      }
      const others = events.filter((e) => (e.type === 'message.received' && e.message_id) || e.type === 'contact.opted_out');
      if (others.length) {
        // Only accounts with runs under way: the rest of the traffic costs one query per batch.
        const accounts = [...new Set(others.map((e) => e.account_id))];
        const active = await tx.selectFrom('workflow_runs').select('account_id').distinct().where('account_id', 'in', accounts).where('status', 'in', ['running', 'waiting']).execute();
        const live = new Set(active.map((r) => r.account_id));
        wanted.push(...others.filter((e) => live.has(e.account_id)));
      }
      if (wanted.length) {
        await tx
          .insertInto('workflow_signals')
          .values(wanted.map((e) => ({ outbox_id: Number(e.id), account_id: e.account_id, mode: e.mode, type: e.type, message_id: e.message_id, created_at: Number(e.created_at) })))
          .onConflict((oc) => oc.column('outbox_id').doNothing())
          .execute();
        // Woken before the commit: at worst the engine looks once too early and again at its poll.
        setTimeout(wake, 5).unref();
      }
      return [];
    },
    async request() {
      throw new Error('workflow signals make no deliveries');
    },
  };
}
