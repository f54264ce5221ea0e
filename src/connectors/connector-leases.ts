// Ownership of exclusive connectors (SMPP binds) across worker processes on one database.
//
// Each worker runs this loop every `renewMs`: for every enabled exclusive connector it takes the
// lease row if it is free or expired, renews it if it is its own, and tells the manager to open
// or close the session accordingly. A process that dies stops renewing; its leases expire after
// `leaseMs` and the next tick of another worker takes them over, so a bind moves within
// leaseMs + renewMs (about 13 s with the defaults). A process that stops cleanly closes its
// sessions first and then deletes its rows, so another worker takes them on its next tick.
//
// Times are wall-clock milliseconds of each process (Date.now, not the injected clock): the
// lease is shared with other processes, so hosts must keep their clocks in step (NTP); a skew of
// a second shortens or lengthens a takeover by a second, it does not let two owners overlap for
// longer than one renewal.
//
// Between "the lease was lost" and the old owner's next tick (a paused process), both processes
// can hold a bind for up to `renewMs`; a submit through the old one still resolves, and its
// message is recorded as usual. An owner that cannot reach the database closes its sessions
// before its lease could have expired, so a takeover never finds it still bound.
import type { Logger } from 'pino';
import type { Storage } from '../storage/database.ts';
import { ConnectorManager } from './connector-manager.ts';

export interface ConnectorLeaseOptions {
  /** This process's identity in the lease table. */
  owner: string;
  leaseMs: number;
  renewMs: number;
}

export class ConnectorLeases {
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  /** Lease expiry per connector held here, as last written. */
  private held = new Map<string, number>();
  private stopped = true;

  constructor(
    private storage: Storage,
    private manager: ConnectorManager,
    private log: Logger,
    private opts: ConnectorLeaseOptions,
  ) {}

  /** Takes what leases it can at once, then keeps them renewed. */
  async start(): Promise<void> {
    this.manager.setSessionPolicy('leased');
    this.stopped = false;
    await this.tick();
    this.timer = setInterval(() => this.kick(), this.opts.renewMs);
    this.timer.unref();
    // A connector created since (through the API of any process) is tried for at once, not at the next renewal.
    this.manager.onNewExclusive = () => setImmediate(() => this.kick());
  }

  private kick(): void {
    if (!this.ticking && !this.stopped) this.ticking = this.tick().finally(() => (this.ticking = null));
  }

  /** Stops renewing, closes the sessions it owns, then gives their leases up for another worker. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    const ids = [...this.held.keys()];
    this.held.clear();
    for (const id of ids) await this.manager.setOwned(id, false);
    if (ids.length) await this.storage.db.deleteFrom('connector_leases').where('connector_id', 'in', ids).where('owner', '=', this.opts.owner).execute();
  }

  /** This process's name in the lease table. */
  get owner(): string {
    return this.opts.owner;
  }

  /** The connectors this process holds the lease of. */
  owned(): string[] {
    return [...this.held.keys()];
  }

  private async tick(): Promise<void> {
    let rows: Array<{ id: string; type: string; enabled: number; updated_at: number }>;
    try {
      rows = await this.storage.db.selectFrom('connectors').select(['id', 'type', 'enabled', 'updated_at']).execute();
      await this.manager.noteRows(rows);
    } catch (err) {
      this.log.warn({ err }, 'connector leases: cannot read connectors');
      await this.dropExpiring();
      return;
    }
    for (const r of rows) {
      if (this.stopped) return;
      if (!ConnectorManager.isExclusiveType(r.type)) continue;
      try {
        if (r.enabled !== 1) {
          if (this.held.has(r.id)) await this.release(r.id);
          continue;
        }
        const now = Date.now();
        const mine = await this.acquire(r.id, now);
        if (mine) {
          const gained = !this.held.has(r.id);
          this.held.set(r.id, now + this.opts.leaseMs);
          await this.manager.setOwned(r.id, true);
          if (gained) this.log.info({ connector: r.id, owner: this.opts.owner }, 'connector lease taken');
        } else if (this.held.has(r.id)) {
          this.log.warn({ connector: r.id }, 'connector lease lost to another process');
          this.held.delete(r.id);
          await this.manager.setOwned(r.id, false);
        }
      } catch (err) {
        this.log.warn({ err, connector: r.id }, 'connector lease renewal failed');
      }
    }
    await this.dropExpiring();
  }

  /** Inserts the lease if there is none, then takes it if it is ours or has expired. */
  private async acquire(id: string, now: number): Promise<boolean> {
    const db = this.storage.db;
    const expires_at = now + this.opts.leaseMs;
    await db
      .insertInto('connector_leases')
      .values({ connector_id: id, owner: this.opts.owner, expires_at })
      .onConflict((oc) => oc.column('connector_id').doNothing())
      .execute();
    // Guarded on the row's state: of two workers seeing the same expired lease, the second's
    // update finds it renewed by the first and changes nothing.
    const r = await db
      .updateTable('connector_leases')
      .set({ owner: this.opts.owner, expires_at })
      .where('connector_id', '=', id)
      .where((eb) => eb.or([eb('owner', '=', this.opts.owner), eb('expires_at', '<', now)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  private async release(id: string): Promise<void> {
    this.held.delete(id);
    await this.manager.setOwned(id, false);
    await this.storage.db.deleteFrom('connector_leases').where('connector_id', '=', id).where('owner', '=', this.opts.owner).execute();
  }

  /** Renewals failed (the database is unreachable): close sessions before another may take them. */
  private async dropExpiring(): Promise<void> {
    const now = Date.now();
    for (const [id, until] of this.held) {
      if (until - now > this.opts.renewMs) continue;
      this.log.warn({ connector: id }, 'connector lease could not be renewed; closing its session');
      this.held.delete(id);
      await this.manager.setOwned(id, false);
    }
  }
}
