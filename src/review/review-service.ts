// The review queue: messages a person should look at (FILTERED content, repeated unknown
// failures). An item is created in the same transaction as the failure that caused it.
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import { newId } from '../ids.ts';
import type { Storage, Tx } from '../storage/database.ts';
import type { ReviewItemsTable } from '../storage/schema.ts';

export const RESOLUTIONS = ['dismissed', 'retried', 'suppressed', 'fixed'] as const;

export interface ReviewItemView {
  id: string;
  message_id: string;
  error_class: string;
  reason: string;
  status: string;
  resolution: string | null;
  note: string | null;
  created_at: string;
  resolved_at: string | null;
}

const view = (r: ReviewItemsTable): ReviewItemView => ({
  id: r.id,
  message_id: r.message_id,
  error_class: r.error_class,
  reason: r.reason,
  status: r.status,
  resolution: r.resolution,
  note: r.note,
  created_at: new Date(r.created_at).toISOString(),
  resolved_at: r.resolved_at ? new Date(r.resolved_at).toISOString() : null,
});

export class ReviewService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async create(tx: Tx, input: { accountId: string; mode: string; messageId: string; errorClass: string; reason: string }): Promise<void> {
    const now = this.clock.now();
    const row: ReviewItemsTable = {
      id: newId('rev', now),
      account_id: input.accountId,
      mode: input.mode,
      message_id: input.messageId,
      error_class: input.errorClass,
      reason: input.reason,
      status: 'open',
      resolution: null,
      note: null,
      created_at: now,
      resolved_at: null,
    };
    await tx.insertInto('review_items').values(row).execute();
    await appendOutbox(tx, [{ accountId: input.accountId, mode: input.mode, type: 'review.created', messageId: input.messageId, data: view(row), at: now }]);
  }

  async list(accountId: string, mode: string, opts: { status?: string; limit: number; cursor?: string }) {
    let q = this.storage.db.selectFrom('review_items').selectAll().where('account_id', '=', accountId).where('mode', '=', mode);
    if (opts.status) q = q.where('status', '=', opts.status);
    if (opts.cursor) q = q.where('id', '<', opts.cursor);
    const rows = await q.orderBy('id', 'desc').limit(opts.limit + 1).execute();
    const more = rows.length > opts.limit;
    const page = rows.slice(0, opts.limit);
    return { data: page.map(view), next_cursor: more ? page[page.length - 1].id : null };
  }

  async resolve(accountId: string, mode: string, id: string, input: { resolution?: unknown; note?: unknown }) {
    const resolution = input.resolution ?? 'dismissed';
    if (typeof resolution !== 'string' || !(RESOLUTIONS as readonly string[]).includes(resolution)) {
      throw validation('resolution', `resolution must be one of ${RESOLUTIONS.join(', ')}.`);
    }
    if (input.note !== undefined && (typeof input.note !== 'string' || input.note.length > 2000)) throw validation('note', 'note must be a string of at most 2000 characters.');
    const row = await this.storage.db.selectFrom('review_items').selectAll().where('id', '=', id).where('account_id', '=', accountId).where('mode', '=', mode).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No review item ${id} in this account.`, { id });
    if (row.status === 'open') {
      await this.storage.db
        .updateTable('review_items')
        .set({ status: 'resolved', resolution, note: (input.note as string | undefined) ?? null, resolved_at: this.clock.now() })
        .where('id', '=', id)
        .where('status', '=', 'open')
        .execute();
    }
    const updated = await this.storage.db.selectFrom('review_items').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    return view(updated);
  }
}
