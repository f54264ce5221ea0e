// Route tables as the API sees them (CONTRACT §9): a route is a priority, filters, and a
// connector or a strategy over several. An account's routes come before installation-wide
// ones of the same priority only by their priority: the lowest matching priority wins.
import { CONFIG_FILE, recordBy, type AuditContext } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { transaction } from '../storage/transactions.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { isAlphanumericSender, parseNumber } from '../messages/phone.ts';
import type { Storage } from '../storage/database.ts';
import type { RoutesTable } from '../storage/schema.ts';
import type { Router, RouteFilters, RouteStrategy } from './router.ts';

const FILTER_KEYS = ['country', 'prefix', 'channel', 'purpose', 'sender'] as const;
const CHANNELS = ['sms', 'mms', 'voice', 'rvm'];
const PURPOSES = ['transactional', 'marketing'];

export interface RouteView {
  id: string;
  object: 'route';
  name: string | null;
  priority: number;
  filters: RouteFilters;
  connector_id: string | null;
  strategy: RouteStrategy | null;
  global: boolean;
  created_at: string;
}

const view = (r: RoutesTable): RouteView => ({
  id: r.id,
  object: 'route',
  name: r.name,
  priority: r.priority,
  filters: JSON.parse(r.filters),
  connector_id: r.connector_id,
  strategy: r.strategy ? JSON.parse(r.strategy) : null,
  global: r.account_id === null,
  created_at: new Date(r.created_at).toISOString(),
});

function stringList(v: unknown, field: string, check: (s: string) => boolean, what: string): string[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0 || list.length > 200) throw validation(field, `${field} must name 1 to 200 values.`);
  for (const s of list) if (typeof s !== 'string' || !check(s)) throw validation(field, `${field}: ${JSON.stringify(s)} is not ${what}.`);
  return list as string[];
}

/** A sender filter value as messages carry it: numbers in E.164, short codes and ids as given. */
function senderAddress(s: string): string | null {
  const t = s.trim();
  if (/^\d{3,8}$/.test(t)) return t;
  const phone = parseNumber(t);
  if (phone) return phone.e164;
  return isAlphanumericSender(t) ? t : null;
}

export class RouteService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private router: Router,
  ) {}

  /** A connector the route may use: the account's own or an installation-wide one (only those for an installation-wide route). */
  private async checkConnector(accountId: string | null, id: unknown, field: string): Promise<string> {
    if (typeof id !== 'string') throw validation(field, `${field} must be a connector id.`);
    const c = await this.storage.db.selectFrom('connectors').select(['id', 'account_id']).where('id', '=', id).executeTakeFirst();
    if (!c || (c.account_id !== null && c.account_id !== accountId)) throw validation(field, `No connector ${id} in this account.`, { value: id });
    return id;
  }

  private parseFilters(v: unknown): RouteFilters {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) throw validation('filters', 'filters must be an object.');
    const f = v as Record<string, unknown>;
    for (const k of Object.keys(f)) if (!(FILTER_KEYS as readonly string[]).includes(k)) throw validation(`filters.${k}`, `Unknown filter ${k}; filters are ${FILTER_KEYS.join(', ')}.`);
    const out: RouteFilters = {};
    if (f.country !== undefined) out.country = stringList(f.country, 'filters.country', (s) => /^[A-Za-z]{2}$/.test(s), 'an ISO 3166 country code').map((s) => s.toUpperCase());
    if (f.prefix !== undefined) out.prefix = stringList(f.prefix, 'filters.prefix', (s) => /^\+?\d{1,15}$/.test(s), 'a number prefix such as +1415').map((s) => (s.startsWith('+') ? s : `+${s}`));
    if (f.channel !== undefined) out.channel = stringList(f.channel, 'filters.channel', (s) => CHANNELS.includes(s), `one of ${CHANNELS.join(', ')}`);
    if (f.purpose !== undefined) out.purpose = stringList(f.purpose, 'filters.purpose', (s) => PURPOSES.includes(s), `one of ${PURPOSES.join(', ')}`);
    if (f.sender !== undefined) out.sender = stringList(f.sender, 'filters.sender', (s) => senderAddress(s) !== null, 'a phone number, short code or alphanumeric sender id').map((s) => senderAddress(s)!);
    return out;
  }

  private async parse(accountId: string | null, input: Record<string, unknown>): Promise<Omit<RoutesTable, 'id' | 'account_id' | 'created_at'>> {
    const priority = input.priority;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 1_000_000) throw validation('priority', 'priority must be a whole number from 0 to 1,000,000.');
    if (input.name !== undefined && (typeof input.name !== 'string' || input.name.length > 200)) throw validation('name', 'name must be a string of at most 200 characters.');
    const filters = this.parseFilters(input.filters);
    let connectorId: string | null = null;
    let strategy: RouteStrategy | null = null;
    if (input.connector_id !== undefined && input.strategy !== undefined) throw validation('strategy', 'Give connector_id or strategy, not both.');
    if (input.connector_id !== undefined) connectorId = await this.checkConnector(accountId, input.connector_id, 'connector_id');
    else if (input.strategy !== undefined) {
      const s = input.strategy as Record<string, unknown>;
      if (typeof s !== 'object' || s === null || (s.type !== 'failover' && s.type !== 'round_robin')) throw validation('strategy.type', 'strategy.type must be failover or round_robin.');
      if (!Array.isArray(s.connector_ids) || s.connector_ids.length === 0 || s.connector_ids.length > 20) throw validation('strategy.connector_ids', 'strategy.connector_ids must list 1 to 20 connectors.');
      const ids: string[] = [];
      for (const id of s.connector_ids) ids.push(await this.checkConnector(accountId, id, 'strategy.connector_ids'));
      strategy = { type: s.type, connector_ids: ids };
    } else throw validation('connector_id', 'A route needs connector_id or strategy.');
    return {
      name: (input.name as string | undefined) ?? null,
      priority,
      filters: JSON.stringify(filters),
      connector_id: connectorId,
      strategy: strategy ? JSON.stringify(strategy) : null,
    };
  }

  async create(accountId: string, input: Record<string, unknown>, by?: Principal | AuditContext): Promise<RouteView> {
    const fields = await this.parse(accountId, input);
    const now = this.clock.now();
    const row: RoutesTable = { id: newId('route', now), account_id: accountId, ...fields, created_at: now };
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('routes').values(row).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'route.created', target: { type: 'route', id: row.id }, details: view(row) as unknown as Record<string, unknown>, at: now });
    });
    this.router.invalidate();
    return view(row);
  }

  /** An installation-wide route declared in the config file, created or replaced by its name. */
  async upsertGlobal(input: Record<string, unknown>): Promise<string> {
    if (typeof input.name !== 'string' || input.name.trim() === '') throw validation('name', 'A route in the config file needs a name: it is how a restart finds it again.');
    const fields = await this.parse(null, { ...input, name: input.name.trim() });
    const existing = await this.storage.db.selectFrom('routes').select('id').where('account_id', 'is', null).where('name', '=', fields.name).executeTakeFirst();
    const now = this.clock.now();
    const id = existing?.id ?? newId('route', now);
    await transaction(this.storage.db, async (tx) => {
      if (existing) await tx.updateTable('routes').set(fields).where('id', '=', id).execute();
      else await tx.insertInto('routes').values({ id, account_id: null, ...fields, created_at: now }).execute();
      await recordBy(tx, CONFIG_FILE, { accountId: null, action: existing ? 'route.updated' : 'route.created', target: { type: 'route', id }, details: { name: fields.name, priority: fields.priority }, at: now });
    });
    this.router.invalidate();
    return id;
  }

  async list(accountId: string): Promise<RouteView[]> {
    const rows = await this.storage.db
      .selectFrom('routes')
      .selectAll()
      .where((eb) => eb.or([eb('account_id', '=', accountId), eb('account_id', 'is', null)]))
      .orderBy('priority')
      .orderBy('created_at')
      .execute();
    return rows.map(view);
  }

  async remove(accountId: string, id: string, by?: Principal | AuditContext): Promise<{ id: string; deleted: true }> {
    const row = await this.storage.db.selectFrom('routes').select(['id', 'account_id']).where('id', '=', id).executeTakeFirst();
    if (!row || (row.account_id !== null && row.account_id !== accountId)) throw new AppError('NOT_FOUND', `No route ${id} in this account.`, { id });
    if (row.account_id === null) throw new AppError('FORBIDDEN', 'Installation-wide routes are changed in the configuration, not through an account.', { id });
    await transaction(this.storage.db, async (tx) => {
      await tx.deleteFrom('routes').where('id', '=', id).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'route.deleted', target: { type: 'route', id }, at: this.clock.now() });
    });
    this.router.invalidate();
    return { id, deleted: true };
  }
}
