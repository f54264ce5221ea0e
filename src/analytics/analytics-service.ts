// Message analytics for the dashboard's charts: volume and delivery per time bucket, failures
// by error class and by connector, reply and opt-out rates. Plain aggregate SQL over integer
// millisecond timestamps, so the same queries run on SQLite and PostgreSQL (integer division
// truncates in both; PostgreSQL's bigint sums arrive as strings and are converted).
import { sql } from 'kysely';
import type { Principal } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';
import type { Storage } from '../storage/database.ts';

export type Bucket = 'hour' | 'day';
const BUCKET_MS: Record<Bucket, number> = { hour: 3_600_000, day: 86_400_000 };
const FAILED = ['failed', 'undelivered', 'expired'];
/** More buckets than a chart can show is a mistake in the range, not a request to honour. */
const MAX_BUCKETS = 2000;

export interface AnalyticsQuery {
  from?: string;
  to?: string;
  bucket?: Bucket;
}

function parseTime(v: string | undefined, field: string, fallback: number): number {
  if (v === undefined || v === '') return fallback;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new AppError('VALIDATION_ERROR', `${field} is not an ISO 8601 date.`, { field });
  return t;
}

const n = (v: unknown) => Number(v ?? 0);

export async function messageAnalytics(storage: Storage, pr: Principal, q: AnalyticsQuery, now: number) {
  const bucket: Bucket = q.bucket ?? 'day';
  const size = BUCKET_MS[bucket];
  const to = parseTime(q.to, 'to', now);
  const from = parseTime(q.from, 'from', to - 7 * 86_400_000);
  if (from >= to) throw new AppError('VALIDATION_ERROR', 'from must be before to.', { field: 'from' });
  if ((to - from) / size > MAX_BUCKETS) throw new AppError('VALIDATION_ERROR', `The range has more than ${MAX_BUCKETS} ${bucket} buckets: use a larger bucket or a shorter range.`, { field: 'bucket' });
  const db = storage.db;
  const inRange = db
    .selectFrom('messages')
    .where('account_id', '=', pr.accountId)
    .where('mode', '=', pr.mode)
    .where('created_at', '>=', from)
    .where('created_at', '<', to);

  const start = sql<number>`(created_at / ${sql.lit(size)}) * ${sql.lit(size)}`;
  const series = await inRange
    .select([
      start.as('bucket_start'),
      sql<number>`sum(case when direction = 'outbound' then 1 else 0 end)`.as('outbound'),
      sql<number>`sum(case when direction = 'inbound' then 1 else 0 end)`.as('inbound'),
      sql<number>`sum(case when direction = 'outbound' and status = 'delivered' then 1 else 0 end)`.as('delivered'),
      sql<number>`sum(case when direction = 'outbound' and status in ('failed', 'undelivered', 'expired') then 1 else 0 end)`.as('failed'),
    ])
    .groupBy(start)
    .orderBy(start)
    .execute();

  const byClass = await inRange
    .select(['error_class', sql<number>`count(*)`.as('count')])
    .where('direction', '=', 'outbound')
    .where('error_class', 'is not', null)
    .where('status', 'in', FAILED)
    .groupBy('error_class')
    .execute();

  const byConnector = await inRange
    .select(['connector_id', sql<number>`count(*)`.as('count')])
    .where('direction', '=', 'outbound')
    .where('status', 'in', FAILED)
    .groupBy('connector_id')
    .execute();

  const optOuts = await db
    .selectFrom('consent_records')
    .select(sql<number>`count(*)`.as('count'))
    .where('account_id', '=', pr.accountId)
    .where('mode', '=', pr.mode)
    .where('status', '=', 'opted_out')
    .where('created_at', '>=', from)
    .where('created_at', '<', to)
    .executeTakeFirst();

  const buckets = series.map((r) => {
    const outbound = n(r.outbound);
    const delivered = n(r.delivered);
    const failed = n(r.failed);
    return { start: new Date(n(r.bucket_start)).toISOString(), outbound, inbound: n(r.inbound), delivered, failed, delivery_rate: outbound ? delivered / outbound : null };
  });
  const totals = buckets.reduce((t, b) => ({ outbound: t.outbound + b.outbound, inbound: t.inbound + b.inbound, delivered: t.delivered + b.delivered, failed: t.failed + b.failed }), { outbound: 0, inbound: 0, delivered: 0, failed: 0 });
  const optedOut = n(optOuts?.count);
  return {
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    bucket,
    buckets,
    totals: { ...totals, opt_outs: optedOut },
    failures_by_class: byClass.map((r) => ({ error_class: r.error_class as string, count: n(r.count) })).sort((a, b) => b.count - a.count),
    failures_by_connector: byConnector.map((r) => ({ connector_id: r.connector_id, count: n(r.count) })).sort((a, b) => b.count - a.count),
    delivery_rate: totals.outbound ? totals.delivered / totals.outbound : null,
    reply_rate: totals.outbound ? totals.inbound / totals.outbound : null,
    opt_out_rate: totals.outbound ? optedOut / totals.outbound : null,
  };
}
