// Throughput limits, counted in segments, enforced before the submit: per sender, per
// connector and per account, all at once, across processes.
//
// Each limited key holds a GCRA "theoretical arrival time" (tat) in `throttle_state`. Sending
// S segments under a rate of R segments/s costs S·1000/R ms of the key's time line. A message
// takes the first slot that is free on ALL its keys; if that slot is in the future, the slot is
// reserved (every key's tat moves past it) and the message waits in the queue until then, with
// no attempt counted. No burst tolerance: a backlog drains at exactly the limit, never above it.
// The reservation and the claim happen in the claim transaction, so two workers cannot both
// take the same slot.
import type { Executor } from '../storage/database.ts';

export interface Limit {
  key: string;
  /** Segments per second. */
  rate: number;
}

const CACHE_MS = 2000;

export class Throttle {
  private senderRates = new Map<string, number | null>();
  private accountRates = new Map<string, number | null>();
  private connectorRates = new Map<string, number | null>();
  private loadedAt = 0;

  invalidate(): void {
    this.loadedAt = 0;
  }

  private async refresh(db: Executor): Promise<void> {
    if (Date.now() - this.loadedAt < CACHE_MS) return;
    const senders = await db.selectFrom('senders').select(['account_id', 'address', 'throughput']).where('throughput', 'is not', null).execute();
    this.senderRates = new Map(senders.map((s) => [`${s.account_id}\u0000${s.address}`, s.throughput]));
    const accounts = await db.selectFrom('accounts').select(['id', 'settings']).execute();
    this.accountRates = new Map(accounts.map((a) => [a.id, Number(JSON.parse(a.settings).throughput) || null]));
    const connectors = await db.selectFrom('connectors').select(['id', 'config']).execute();
    this.connectorRates = new Map(connectors.map((c) => [c.id, Number(JSON.parse(c.config).throughput) || null]));
    this.loadedAt = Date.now();
  }

  async limitsFor(db: Executor, m: { account_id: string; from_addr: string | null }, connectorId: string): Promise<Limit[]> {
    await this.refresh(db);
    const out: Limit[] = [];
    const sender = m.from_addr ? this.senderRates.get(`${m.account_id}\u0000${m.from_addr}`) : null;
    if (sender) out.push({ key: `sender:${m.account_id}:${m.from_addr}`, rate: sender });
    const connector = this.connectorRates.get(connectorId);
    if (connector) out.push({ key: `connector:${connectorId}`, rate: connector });
    const account = this.accountRates.get(m.account_id);
    if (account) out.push({ key: `account:${m.account_id}`, rate: account });
    return out;
  }

  /** Reserves the first slot free on every key; returns its time (≤ now means "go now"). */
  async reserve(db: Executor, limits: Limit[], segments: number, now: number, lockRows = false): Promise<number> {
    const keys = limits.map((l) => l.key).sort();
    let q = db.selectFrom('throttle_state').selectAll().where('key', 'in', keys);
    if (lockRows) {
      // Several workers (PostgreSQL): read-then-write must not let two claims take the same slot.
      // Each key's row is made to exist (tat 0 is "free"), then locked, in key order, until the
      // claim commits; a second worker's claim for the same keys waits here for the first.
      for (const key of keys) await db.insertInto('throttle_state').values({ key, tat: 0 }).onConflict((oc) => oc.column('key').doNothing()).execute();
      q = q.orderBy('key').forUpdate();
    }
    const rows = await q.execute();
    const tat = new Map(rows.map((r) => [r.key, Number(r.tat)]));
    const slot = Math.max(now, ...limits.map((l) => tat.get(l.key) ?? now));
    for (const l of limits) {
      const next = slot + Math.ceil((segments * 1000) / l.rate);
      await db
        .insertInto('throttle_state')
        .values({ key: l.key, tat: next })
        .onConflict((oc) => oc.column('key').doUpdateSet({ tat: next }))
        .execute();
    }
    return slot;
  }
}
