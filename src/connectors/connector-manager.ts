// Live connector sessions. A connector row is an identity and its configuration; its session
// (a simulator loop, later an SMPP bind) lives here. The manager also keeps each connector's
// circuit: a connector that refuses our credentials is skipped by routing until it cools down.
import type { Clock } from '../clock.ts';
import type { Sealer } from '../security/crypto.ts';
import type { Storage } from '../storage/database.ts';
import type { Connector, ConnectorDeps, ConnectorRow } from './connector.ts';
import { CONNECTOR_TYPES } from './connector-registry.ts';

const CIRCUIT_OPEN_MS = 30_000;

interface Circuit {
  openUntil: number;
  reason: string;
}

export class ConnectorManager {
  private instances = new Map<string, Connector>();
  private starting = new Map<string, Promise<Connector | null>>();
  private circuits = new Map<string, Circuit>();
  private started = false;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private deps: ConnectorDeps,
    private sealer: Sealer,
  ) {}

  static isKnownType(type: string): boolean {
    return type in CONNECTOR_TYPES;
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
  async row(id: string): Promise<(ConnectorRow & { enabled: boolean }) | null> {
    const r = await this.storage.db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return null;
    const secrets = r.secrets ? JSON.parse(this.sealer.open(r.secrets)) : {};
    return { id: r.id, account_id: r.account_id, name: r.name, type: r.type, config: { ...JSON.parse(r.config), ...secrets }, enabled: r.enabled === 1 };
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
        const instance = type.create(row, this.deps);
        await instance.start();
        this.instances.set(id, instance);
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
