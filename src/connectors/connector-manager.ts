// Live connector sessions. A connector row is an identity and its configuration; its session
// (a simulator loop, later an SMPP bind) lives here. The manager also keeps each connector's
// circuit: a connector that refuses our credentials is skipped by routing until it cools down.
//
// Exclusive connectors (a stateful session such as an SMPP bind, see connector-registry.ts) are
// opened according to the process's session policy:
//   local  — on first use, as any other connector (one process: tests, the CLI without workers).
//   leased — only while this process holds the connector's lease (connector-leases.ts drives
//            setOwned); the dispatcher asks usableHere() before it claims a message for one.
//   never  — not in this process at all (the API role).
import type { Clock } from '../clock.ts';
import type { Storage } from '../storage/database.ts';
import type { Connector, ConnectorDeps, ConnectorRow } from './connector.ts';
import { CONNECTOR_TYPES } from './connector-registry.ts';

const CIRCUIT_OPEN_MS = 30_000;

export type SessionPolicy = 'local' | 'leased' | 'never';

interface Circuit {
  openUntil: number;
  reason: string;
}

export class ConnectorManager {
  private instances = new Map<string, Connector>();
  private starting = new Map<string, Promise<Connector | null>>();
  private circuits = new Map<string, Circuit>();
  private started = false;
  private policy: SessionPolicy = 'local';
  /** Exclusive connectors whose lease this process holds (policy `leased`). */
  private owned = new Set<string>();
  /** Connectors known to be of a stateless type, usable in any worker; and known exclusive ones. */
  private stateless = new Set<string>();
  private exclusive = new Set<string>();
  private learning = new Set<string>();
  /** Called when a connector becomes usable here (leased, or its type learnt): wake the dispatcher. */
  onUsable: () => void = () => {};
  /** Called when an exclusive connector not seen before turns up: try for its lease now. */
  onNewExclusive: () => void = () => {};
  /** Each running instance's row version (updated_at), to notice changes made by other processes. */
  private versions = new Map<string, number>();

  constructor(
    private storage: Storage,
    private clock: Clock,
    private deps: ConnectorDeps,
  ) {}

  static isKnownType(type: string): boolean {
    return type in CONNECTOR_TYPES;
  }

  static isExclusiveType(type: string): boolean {
    return CONNECTOR_TYPES[type]?.exclusive === true;
  }

  setSessionPolicy(policy: SessionPolicy): void {
    this.policy = policy;
  }

  /**
   * Whether a worker here may submit through a connector: always under `local`; under `leased`,
   * a stateless connector, or an exclusive one whose lease is held here. A connector not yet
   * seen counts as not usable: its message waits for the next pass, it is not failed over.
   */
  usableHere(id: string): boolean {
    if (this.policy === 'local') return true;
    if (this.stateless.has(id) || this.owned.has(id)) return true;
    if (!this.exclusive.has(id) && !this.learning.has(id)) {
      // Created since the lease loop last looked: learn its type now, outside the caller's
      // transaction (not awaited), and wake the dispatcher once it is known.
      this.learning.add(id);
      void this.storage.db
        .selectFrom('connectors')
        .select(['id', 'type', 'updated_at'])
        .where('id', '=', id)
        .execute()
        .then((rows) => this.noteRows(rows))
        .then(() => this.stateless.has(id) && this.onUsable())
        .catch(() => {})
        .finally(() => this.learning.delete(id));
    }
    return false;
  }

  /** The connectors' types and row versions as the lease loop read them; reloads changed rows. */
  async noteRows(rows: Array<{ id: string; type: string; updated_at: number }>): Promise<void> {
    for (const r of rows) {
      const exclusive = ConnectorManager.isExclusiveType(r.type);
      if (exclusive && !this.exclusive.has(r.id)) this.onNewExclusive();
      (exclusive ? this.exclusive : this.stateless).add(r.id);
      (exclusive ? this.stateless : this.exclusive).delete(r.id);
      const seen = this.versions.get(r.id);
      // Changed by another process (the API role): take the new configuration.
      if (seen !== undefined && r.updated_at > seen) await this.reload(r.id);
    }
  }

  /** The lease loop's verdict: open the session while owned, close it when the lease is gone. */
  async setOwned(id: string, owned: boolean): Promise<void> {
    if (owned === this.owned.has(id)) return;
    if (owned) {
      this.owned.add(id);
      await this.get(id);
      this.onUsable();
      return;
    }
    this.owned.delete(id);
    const inst = this.instances.get(id);
    this.instances.delete(id);
    this.versions.delete(id);
    if (inst) await inst.stop();
  }

  async rows(): Promise<ConnectorRow[]> {
    const rows = await this.storage.db.selectFrom('connectors').select('id').where('enabled', '=', 1).execute();
    const out: ConnectorRow[] = [];
    for (const r of rows) {
      const row = await this.row(r.id);
      if (row) out.push(row);
    }
    return out;
  }

  /** A connector's row with its credentials unsealed into its config: for the session only. */
  async row(id: string): Promise<(ConnectorRow & { enabled: boolean; updated_at: number }) | null> {
    const r = await this.storage.db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return null;
    // `secrets` is sealed at rest and opened by the storage layer (security/sealing-plugin.ts).
    const secrets = r.secrets ? JSON.parse(r.secrets) : {};
    return { id: r.id, account_id: r.account_id, name: r.name, type: r.type, config: { ...JSON.parse(r.config), ...secrets }, enabled: r.enabled === 1, updated_at: r.updated_at };
  }

  /** Starts every enabled connector (the worker role). */
  async startAll(): Promise<void> {
    this.started = true;
    for (const row of await this.rows()) await this.get(row.id);
  }

  async stopAll(): Promise<void> {
    this.started = false;
    const all = [...this.instances.values()];
    this.instances.clear();
    this.versions.clear();
    this.owned.clear();
    await Promise.all(all.map((c) => c.stop()));
  }

  /** The running instance for a connector id, started on first use; null if disabled or unknown. */
  async get(id: string): Promise<Connector | null> {
    const existing = this.instances.get(id);
    if (existing) return existing;
    let pending = this.starting.get(id);
    if (!pending) {
      pending = (async () => {
        const row = await this.row(id);
        if (!row || !row.enabled) return null;
        const type = CONNECTOR_TYPES[row.type];
        if (!type) return null;
        if (type.exclusive && !(this.policy === 'local' || (this.policy === 'leased' && this.owned.has(id)))) return null;
        const instance = type.create(row, this.deps);
        await instance.start();
        this.instances.set(id, instance);
        this.versions.set(id, row.updated_at);
        return instance;
      })().finally(() => this.starting.delete(id));
      this.starting.set(id, pending);
    }
    return pending;
  }

  /** Drops a running instance so the next use starts it from its (changed) row. */
  async reload(id: string): Promise<void> {
    const inst = this.instances.get(id);
    this.instances.delete(id);
    this.versions.delete(id);
    this.circuits.delete(id);
    if (inst) await inst.stop();
    if (this.started) await this.get(id);
  }

  /** How many submits a connector takes at once (its window); unbounded until it has started. */
  capacity(id: string): number {
    return this.instances.get(id)?.capabilities.maxInFlight ?? Number.POSITIVE_INFINITY;
  }

  running(): Connector[] {
    return [...this.instances.values()];
  }

  openCircuit(id: string, reason: string): void {
    this.circuits.set(id, { openUntil: this.clock.now() + CIRCUIT_OPEN_MS, reason });
  }

  closeCircuit(id: string): void {
    this.circuits.delete(id);
  }

  /** When the circuit is open, the time it half-opens; otherwise null. */
  circuitOpenUntil(id: string): number | null {
    const c = this.circuits.get(id);
    if (!c) return null;
    if (c.openUntil <= this.clock.now()) return null; // half-open: let the next attempt through
    return c.openUntil;
  }

  circuitState(id: string) {
    const c = this.circuits.get(id);
    if (!c) return { state: 'closed' as const };
    return c.openUntil > this.clock.now()
      ? { state: 'open' as const, reason: c.reason, until: new Date(c.openUntil).toISOString() }
      : { state: 'half_open' as const, reason: c.reason };
  }
}
