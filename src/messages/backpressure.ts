// Backpressure: an account whose backlog (its messages `queued` or `sending`) has passed the
// ceiling gets 429 RATE_LIMITED with Retry-After on POST /v1/messages and the batch endpoint,
// until the workers have worked it down. The queue lives in the database; this keeps one tenant
// from growing it without bound while the carriers (or their throughput limits) cannot keep up.
//
// The count is approximate by design, so that it costs almost nothing per request:
//   - each process counts an account's backlog at most once per `refreshMs` (one indexed query,
//     messages_backlog, and bounded: it stops counting at ceiling + 1), and never on the request
//     path except the first time it sees the account;
//   - between counts, messages accepted by THIS process are added to the cached figure, so a
//     burst through one process is stopped at the ceiling; messages accepted by other API
//     processes and messages the workers sent in the meantime show up at the next count.
// An account can therefore overshoot the ceiling by what the other API processes accept within
// one refresh interval, and is let in again at most one interval after its backlog fell below it.
import { sql } from 'kysely';
import { AppError } from '../errors.ts';
import type { Storage } from '../storage/database.ts';
import type { MessageRow } from './message-view.ts';

export interface BackpressureOptions {
  /** The most messages an account may have queued or sending before new ones are refused. */
  ceiling: number;
  refreshMs: number;
}

interface Backlog {
  count: number;
  countedAt: number;
  counting: Promise<void> | null;
}

export class Backpressure {
  private backlogs = new Map<string, Backlog>();

  constructor(
    private storage: Storage,
    private opts: BackpressureOptions,
  ) {}

  /** Throws RATE_LIMITED when the account's backlog is at or over the ceiling. */
  async check(accountId: string): Promise<void> {
    let b = this.backlogs.get(accountId);
    if (!b) {
      b = { count: 0, countedAt: 0, counting: null };
      this.backlogs.set(accountId, b);
    }
    // Cache times are real time, like every cache here: they bound work, they decide nothing.
    if (Date.now() - b.countedAt >= this.opts.refreshMs && !b.counting) {
      const entry = b;
      entry.counting = this.count(accountId)
        .then((n) => {
          entry.count = n;
          entry.countedAt = Date.now();
        })
        // The database is unreachable: the request's own commit will say so; count again next time.
        .catch(() => {})
        .finally(() => (entry.counting = null));
    }
    if (b.countedAt === 0) await b.counting;
    if (b.count >= this.opts.ceiling) {
      const retryAfterS = Math.max(1, Math.ceil(this.opts.refreshMs / 1000));
      throw new AppError(
        'RATE_LIMITED',
        `This account has ${b.count >= this.opts.ceiling + 1 ? 'more than ' : ''}${this.opts.ceiling} messages waiting to be sent; try again once they have gone out.`,
        { backlog_ceiling: this.opts.ceiling, retry_after_seconds: retryAfterS },
        { 'retry-after': String(retryAfterS) },
      );
    }
  }

  /** Messages this process accepted since the last count (onAccepted listener). */
  noteAccepted(rows: MessageRow[]): void {
    for (const r of rows) {
      if (r.status !== 'queued') continue;
      const b = this.backlogs.get(r.account_id);
      if (b) b.count++;
    }
  }

  private async count(accountId: string): Promise<number> {
    const limit = this.opts.ceiling + 1;
    const r = await sql<{ n: number }>`select count(*) as n from (select 1 from messages where account_id = ${accountId} and status in ('queued', 'sending') limit ${limit}) backlog`.execute(this.storage.db);
    return Number(r.rows[0]?.n ?? 0);
  }
}
