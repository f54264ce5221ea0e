// Waking workers in other processes (PostgreSQL only): a process that accepts messages says
// `NOTIFY switchboard_work` after their commit; every worker holds one dedicated connection
// doing `LISTEN switchboard_work` and wakes its dispatcher and webhook worker on each
// notification. Polling stays as the fallback, at a longer interval while the listener is up.
//
// NOTIFY is cheap but not free: the first accept of a burst notifies at once, later ones within
// COALESCE_MS are folded into one more notification at the end of the window, so a flood of
// accepts costs at most one NOTIFY per window. A notification carries no payload: it only
// means "look at the queue"; the queue itself is the message table.
//
// SQLite is single-process for workers: the accepting process wakes its own dispatcher in
// memory (platform.ts), and this module is not used.
import pg from 'pg';
import type { Logger } from 'pino';
import { sql } from 'kysely';
import type { Storage } from '../storage/database.ts';

export const WORK_CHANNEL = 'switchboard_work';
const COALESCE_MS = 10;
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5000;

export class WorkSignal {
  private windowTimer: NodeJS.Timeout | null = null;
  private pendingInWindow = false;
  private client: pg.Client | null = null;
  private listening = false;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectMs = RECONNECT_MIN_MS;
  private live = false;

  constructor(
    private storage: Storage,
    private url: string,
    private log: Logger,
  ) {}

  /** Whether the listener is connected and listening now. */
  get active(): boolean {
    return this.live;
  }

  /** New work was committed: tell the workers, coalesced. */
  notify(): void {
    if (this.windowTimer) {
      this.pendingInWindow = true;
      return;
    }
    this.send();
    this.windowTimer = setTimeout(() => {
      this.windowTimer = null;
      if (this.pendingInWindow) {
        this.pendingInWindow = false;
        this.notify();
      }
    }, COALESCE_MS);
    this.windowTimer.unref();
  }

  private send(): void {
    sql`select pg_notify(${WORK_CHANNEL}, '')`.execute(this.storage.db).catch((err) => this.log.warn({ err }, 'NOTIFY failed; workers will find the work at their next poll'));
  }

  /**
   * Listens until close(). `onWake` runs on every notification, and once each time the listener
   * (re)connects, for work committed while it was down; `onState` reports whether it is live.
   */
  async listen(onWake: () => void, onState: (live: boolean) => void): Promise<void> {
    this.listening = true;
    this.onWake = onWake;
    this.onState = onState;
    await this.connect();
  }

  private onWake: () => void = () => {};
  private onState: (live: boolean) => void = () => {};

  private async connect(): Promise<void> {
    if (!this.listening) return;
    const client = new pg.Client({ connectionString: this.url });
    this.client = client;
    let dropped = false;
    const drop = (err?: Error) => {
      if (dropped) return;
      dropped = true;
      if (this.client === client) this.client = null;
      this.setLive(false);
      client.end().catch(() => {});
      if (!this.listening) return;
      if (err) this.log.warn({ err: err.message }, `LISTEN ${WORK_CHANNEL} connection lost; polling until it is back`);
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = null;
        void this.connect();
      }, this.reconnectMs);
      this.reconnectTimer.unref();
      this.reconnectMs = Math.min(this.reconnectMs * 2, RECONNECT_MAX_MS);
    };
    client.on('error', drop);
    client.on('end', () => drop(new Error('connection ended')));
    client.on('notification', () => this.onWake());
    try {
      await client.connect();
      await client.query(`LISTEN ${WORK_CHANNEL}`);
    } catch (err) {
      drop(err as Error);
      return;
    }
    if (dropped) return;
    this.reconnectMs = RECONNECT_MIN_MS;
    this.setLive(true);
    this.onWake();
  }

  private setLive(live: boolean): void {
    if (live === this.live) return;
    this.live = live;
    this.onState(live);
  }

  async close(): Promise<void> {
    this.listening = false;
    if (this.windowTimer) clearTimeout(this.windowTimer);
    this.windowTimer = null;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    const client = this.client;
    this.client = null;
    this.setLive(false);
    if (client) await client.end().catch(() => {});
  }
}
