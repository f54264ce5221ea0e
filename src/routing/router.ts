// Routing: which connectors may carry a message, in the order to try them. A route is filters
// plus a connector or a strategy (Jasmin's model); the route table is ordered by priority, the
// lowest matching priority first, and every later matching route is a fallback.
// A connector that cannot carry the message's channel (connector-channels.ts) is skipped.
// Test-mode traffic only ever reaches simulator connectors: any other connector on a matching
// route is skipped, and the built-in simulator takes what is left.
import { countryFacts } from '../messages/phone.ts';
import { BUILTIN_SIMULATOR_ID } from '../accounts/account-service.ts';
import { carries } from '../connectors/connector-channels.ts';
import type { Executor, Storage } from '../storage/database.ts';

export interface RouteFilters {
  country?: string | string[];
  prefix?: string | string[];
  channel?: string | string[];
  purpose?: string | string[];
  /** The message's sender address (E.164, short code or alphanumeric id). */
  sender?: string | string[];
}

export interface RouteStrategy {
  type: 'failover' | 'round_robin';
  connector_ids: string[];
}

interface RouteRow {
  id: string;
  account_id: string | null;
  priority: number;
  filters: RouteFilters;
  connector_id: string | null;
  strategy: RouteStrategy | null;
}

export interface RoutingRequest {
  accountId: string;
  mode: string;
  channel: string;
  to: string;
  purpose: string;
  /** The message's from address; a route with a sender filter never matches a message without one. */
  from?: string | null;
  /** The channel the connectors must carry, when not the message's own: an MMS that would go as SMS. */
  carry?: string;
}

const asList = (v: string | string[] | undefined) => (v === undefined ? undefined : Array.isArray(v) ? v : [v]);

export function routeMatches(filters: RouteFilters, req: RoutingRequest, country: string | undefined): boolean {
  const countries = asList(filters.country);
  if (countries && (!country || !countries.map((c) => c.toUpperCase()).includes(country))) return false;
  const prefixes = asList(filters.prefix);
  if (prefixes && !prefixes.some((p) => req.to.startsWith(p.startsWith('+') ? p : `+${p}`))) return false;
  const channels = asList(filters.channel);
  if (channels && !channels.includes(req.channel)) return false;
  const purposes = asList(filters.purpose);
  if (purposes && !purposes.includes(req.purpose)) return false;
  const senders = asList(filters.sender);
  if (senders && (!req.from || !senders.includes(req.from))) return false;
  return true;
}

export class Router {
  private table: RouteRow[] | null = null;
  private connectorTypes = new Map<string, string>();
  private rr = new Map<string, number>();
  private loadedAt = 0;

  constructor(
    private storage: Storage,
    private cacheMs = 2000,
  ) {}

  invalidate(): void {
    this.table = null;
  }

  private async load(db: Executor): Promise<RouteRow[]> {
    if (this.table && Date.now() - this.loadedAt < this.cacheMs) return this.table;
    const rows = await db.selectFrom('routes').selectAll().orderBy('priority').orderBy('created_at').execute();
    const connectors = await db.selectFrom('connectors').select(['id', 'type', 'enabled']).execute();
    this.connectorTypes = new Map(connectors.filter((c) => c.enabled === 1).map((c) => [c.id, c.type]));
    this.table = rows.map((r) => ({
      id: r.id,
      account_id: r.account_id,
      priority: r.priority,
      filters: JSON.parse(r.filters),
      connector_id: r.connector_id,
      strategy: r.strategy ? JSON.parse(r.strategy) : null,
    }));
    this.loadedAt = Date.now();
    return this.table;
  }

  /**
   * Connector ids to try, best first, without repeats. Never empty for test mode.
   * Inside a transaction, pass it as `db`: on SQLite the transaction holds the only
   * connection, and a query outside it would wait forever.
   */
  async candidates(req: RoutingRequest, db: Executor = this.storage.db): Promise<string[]> {
    const table = await this.load(db);
    const country = countryFacts(req.to).country;
    const out: string[] = [];
    for (const route of table) {
      if (route.account_id !== null && route.account_id !== req.accountId) continue;
      if (!routeMatches(route.filters, req, country)) continue;
      for (const id of this.expand(route)) {
        const type = this.connectorTypes.get(id);
        if (!type) continue; // disabled or deleted
        if (!carries(type, req.carry ?? req.channel)) continue; // an MMS to an SMPP bind: see mms-fallback.ts
        if (req.mode === 'test' && type !== 'simulator') continue;
        if (!out.includes(id)) out.push(id);
      }
    }
    if (req.mode === 'test' && out.length === 0) out.push(BUILTIN_SIMULATOR_ID);
    return out;
  }

  /** A connector's type as of the last candidates() call (known for every id it returned). */
  typeOf(connectorId: string): string | undefined {
    return this.connectorTypes.get(connectorId);
  }

  private expand(route: RouteRow): string[] {
    if (route.connector_id) return [route.connector_id];
    if (!route.strategy) return [];
    const ids = route.strategy.connector_ids;
    if (route.strategy.type === 'round_robin' && ids.length > 1) {
      const n = this.rr.get(route.id) ?? 0;
      this.rr.set(route.id, n + 1);
      const start = n % ids.length;
      return [...ids.slice(start), ...ids.slice(0, start)];
    }
    return ids;
  }
}
