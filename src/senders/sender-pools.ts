// Choosing a sender from a pool, at accept time (the message's `from` is the chosen number, so
// the API answer shows it). A message names a pool with `"from": "pool_…"` or `sender_pool_id`;
// with neither `from` nor a pool, the account's default pool (if it has one) is used.
//
// Order of preference among the pool's senders that can carry the message's channel:
//   1. sticky: the sender this recipient already heard from in this pool (sender_pool_sticky);
//   2. area-code match: a sender with the recipient's NANP area code, then one in its country;
//   3. any of them.
// Within a tier the pick is a rendezvous hash of (recipient, sender id): the same recipient gets
// the same sender every time, and adding a sender to the pool moves few recipients. A sticky pool
// also records the first pick, so that it survives every later change to the pool. The record is
// written when the pick is made (before the message's own checks end): it is the pool's memory of
// a recipient, not message data, and it only fixes the choice the hash would have made anyway.
import { createHash } from 'node:crypto';
import { AppError, validation } from '../errors.ts';
import { parseNumber } from '../messages/phone.ts';
import type { Clock } from '../clock.ts';
import type { Executor, Storage } from '../storage/database.ts';
import { readCache, type ReadCache } from '../storage/read-cache.ts';
import type { SenderPoolsTable } from '../storage/schema.ts';

export const POOL_PREFIX = 'pool_';

export interface PoolTarget {
  to: string;
  channel: string;
  /** The request's `sender_pool_id`, unchecked. */
  poolId?: unknown;
}

interface PoolMember {
  id: string;
  address: string;
  capabilities: string[];
}

/** The NANP area code of a +1 number (+1 415 555 0100 → "415"); null for other numbers. */
export function nanpAreaCode(e164: string): string | null {
  return /^\+1\d{10}$/.test(e164) ? e164.slice(2, 5) : null;
}

const weight = (recipient: string, senderId: string) => createHash('sha256').update(`${recipient}\u0000${senderId}`).digest().readUInt32BE(0);

/** The member with the highest rendezvous weight for this recipient. */
export function rendezvous<T extends { id: string }>(recipient: string, members: T[]): T {
  let best = members[0];
  let bestWeight = -1;
  for (const m of members) {
    const w = weight(recipient, m.id);
    if (w > bestWeight || (w === bestWeight && m.id < best.id)) [best, bestWeight] = [m, w];
  }
  return best;
}

/** The senders to choose among: the recipient's area code, else its country, else all. */
export function preferredTier(members: PoolMember[], to: string, areaCodeMatch: boolean): PoolMember[] {
  if (!areaCodeMatch) return members;
  const area = nanpAreaCode(to);
  if (area) {
    const same = members.filter((m) => nanpAreaCode(m.address) === area);
    if (same.length) return same;
  }
  const country = parseNumber(to)?.country;
  if (country) {
    const same = members.filter((m) => parseNumber(m.address)?.country === country);
    if (same.length) return same;
  }
  return members;
}

export class SenderPools {
  private rr = new Map<string, number>();
  private defaults: ReadCache<SenderPoolsTable | null>;

  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {
    this.defaults = readCache(storage);
  }

  /**
   * The sender address a pool gives this message, or undefined when no pool applies (the
   * request names a plain address, or names nothing and the account has no default pool).
   */
  async resolve(accountId: string, from: unknown, target: PoolTarget, db: Executor = this.storage.db): Promise<string | undefined> {
    const named = typeof from === 'string' && from.trim().startsWith(POOL_PREFIX) ? from.trim() : undefined;
    const given = target.poolId === undefined || target.poolId === null || target.poolId === '' ? undefined : target.poolId;
    if (given !== undefined && typeof given !== 'string') throw validation('sender_pool_id', 'sender_pool_id must be a sender pool id.');
    if (given !== undefined && from !== undefined && from !== null && from !== '' && named !== given) {
      throw validation('sender_pool_id', 'Give from or sender_pool_id, not both.');
    }
    const poolRef = named ?? (given as string | undefined);
    const field = named ? 'from' : 'sender_pool_id';
    let pool;
    if (poolRef) {
      pool = await db.selectFrom('sender_pools').selectAll().where('id', '=', poolRef).where('account_id', '=', accountId).executeTakeFirst();
      if (!pool) throw validation(field, `${poolRef} is not a sender pool of this account.`, { value: poolRef });
    } else {
      if (from !== undefined && from !== null && from !== '') return undefined;
      // Asked for every message without a `from`: through the configuration cache.
      pool = await this.defaults.get(accountId, async () => (await db.selectFrom('sender_pools').selectAll().where('account_id', '=', accountId).where('is_default', '=', 1).executeTakeFirst()) ?? null);
      if (!pool) return undefined;
    }
    const members: PoolMember[] = (
      await db
        .selectFrom('sender_pool_members as m')
        .innerJoin('senders as s', 's.id', 'm.sender_id')
        .select(['s.id', 's.address', 's.capabilities'])
        .where('m.pool_id', '=', pool.id)
        .orderBy('m.position')
        .execute()
    ).map((r) => ({ id: r.id, address: r.address, capabilities: JSON.parse(r.capabilities) as string[] }));
    const able = members.filter((m) => m.capabilities.includes(target.channel));
    if (able.length === 0) {
      throw new AppError('FILTERED', `Sender pool ${pool.name} has no sender that can send ${target.channel}.`, { field, pool_id: pool.id, channel: target.channel, reason: 'no_capable_sender' });
    }
    if (pool.sticky !== 1) {
      const tier = preferredTier(able, target.to, pool.area_code_match === 1);
      const n = this.rr.get(pool.id) ?? 0;
      this.rr.set(pool.id, n + 1);
      return tier[n % tier.length].address;
    }
    const remembered = await this.sticky(db, pool.id, target.to);
    const kept = remembered && members.find((m) => m.id === remembered);
    if (kept) {
      // The recipient's number cannot carry this channel (an sms-only number and an mms):
      // this message goes from another, and the recipient keeps their number.
      if (kept.capabilities.includes(target.channel)) return kept.address;
      return rendezvous(target.to, preferredTier(able, target.to, pool.area_code_match === 1)).address;
    }
    const pick = rendezvous(target.to, preferredTier(able, target.to, pool.area_code_match === 1));
    if (remembered) {
      // The remembered sender left the pool: the recipient gets a new one, from now on.
      await db.updateTable('sender_pool_sticky').set({ sender_id: pick.id, created_at: this.clock.now() }).where('pool_id', '=', pool.id).where('recipient', '=', target.to).where('sender_id', '=', remembered).execute();
    } else {
      await db
        .insertInto('sender_pool_sticky')
        .values({ pool_id: pool.id, recipient: target.to, sender_id: pick.id, created_at: this.clock.now() })
        .onConflict((oc) => oc.columns(['pool_id', 'recipient']).doNothing())
        .execute();
    }
    // Two first messages to one recipient at once: whichever record landed first wins for both.
    const winnerId = await this.sticky(db, pool.id, target.to);
    const winner = able.find((m) => m.id === winnerId);
    return (winner ?? pick).address;
  }

  private async sticky(db: Executor, poolId: string, recipient: string): Promise<string | undefined> {
    const row = await db.selectFrom('sender_pool_sticky').select('sender_id').where('pool_id', '=', poolId).where('recipient', '=', recipient).executeTakeFirst();
    return row?.sender_id;
  }
}
