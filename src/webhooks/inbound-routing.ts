// Inbound routing rules: which endpoint hears a `message.received`. The guide's advice is to
// route replies by owner instead of into one shared inbox; rules also match the account number
// a message came to, or its keyword. Rules are read in priority order (lowest first); the first
// that matches sends the event to its endpoint only. With no matching rule, every endpoint
// subscribed to `message.received` gets it, as before.
import type { Clock } from '../clock.ts';
import type { Principal } from '../auth/scopes.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { keywordOf } from '../dispatch/receipt-service.ts';
import { normaliseNumber } from '../messages/phone.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Executor, Storage } from '../storage/database.ts';
import { webhookDb, type InboundRoutesTable, type WebhookDB } from './webhook-tables.ts';
import type { Kysely, Transaction } from 'kysely';

export interface InboundMatch {
  number?: string;
  keyword?: string;
  owner?: string;
}

export interface InboundRouteView {
  id: string;
  object: 'inbound_route';
  priority: number;
  match: InboundMatch;
  endpoint_id: string;
  created_at: string;
}

const view = (r: InboundRoutesTable): InboundRouteView => ({
  id: r.id,
  object: 'inbound_route',
  priority: r.priority,
  match: JSON.parse(r.match),
  endpoint_id: r.endpoint_id,
  created_at: new Date(r.created_at).toISOString(),
});

/** What a rule looks at in a `message.received` payload. */
export interface InboundFacts {
  to: string | null;
  body: string | null;
  owner: string | null;
}

export function inboundFacts(payload: string): InboundFacts {
  const data = (JSON.parse(payload).data ?? {}) as { to?: string; body?: string; contact?: { owner?: string | null } };
  return { to: data.to ?? null, body: data.body ?? null, owner: data.contact?.owner ?? null };
}

export function ruleMatches(match: InboundMatch, facts: InboundFacts): boolean {
  if (match.number !== undefined && match.number !== facts.to) return false;
  if (match.keyword !== undefined) {
    const first = (facts.body ?? '').trim().split(/\s+/)[0] ?? '';
    if (keywordOf(first) !== match.keyword) return false;
  }
  if (match.owner !== undefined && match.owner !== facts.owner) return false;
  return true;
}

/** The first matching rule's endpoint, or null when no rule speaks for this message. */
export async function routeInbound(tx: Transaction<WebhookDB> | Kysely<WebhookDB>, accountId: string, mode: string, facts: InboundFacts): Promise<string | null> {
  const rules = await tx.selectFrom('inbound_routes').selectAll().where('account_id', '=', accountId).where('mode', '=', mode).orderBy('priority').orderBy('created_at').execute();
  for (const r of rules) if (ruleMatches(JSON.parse(r.match), facts)) return r.endpoint_id;
  return null;
}

export class InboundRouteService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  private get db() {
    return webhookDb(this.storage);
  }

  async create(pr: Principal, input: Record<string, unknown>): Promise<InboundRouteView> {
    const priority = input.priority ?? 100;
    if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 1_000_000) throw validation('priority', 'priority must be a whole number from 0 to 1,000,000.');
    const m = input.match;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) throw validation('match', 'match must be an object with number, keyword and/or owner.');
    const given = m as Record<string, unknown>;
    for (const k of Object.keys(given)) if (!['number', 'keyword', 'owner'].includes(k)) throw validation(`match.${k}`, `Unknown match field ${k}; use number, keyword or owner.`);
    const match: InboundMatch = {};
    if (given.number !== undefined) match.number = normaliseNumber(given.number, 'match.number').e164;
    if (given.keyword !== undefined) {
      if (typeof given.keyword !== 'string' || !/^\S{1,30}$/.test(given.keyword.trim())) throw validation('match.keyword', 'match.keyword must be one word of at most 30 characters.');
      match.keyword = keywordOf(given.keyword);
    }
    if (given.owner !== undefined) {
      if (typeof given.owner !== 'string' || given.owner.length === 0 || given.owner.length > 200) throw validation('match.owner', 'match.owner must be 1 to 200 characters.');
      match.owner = given.owner;
    }
    if (Object.keys(match).length === 0) throw validation('match', 'match needs at least one of number, keyword, owner.');
    if (typeof input.endpoint_id !== 'string') throw validation('endpoint_id', 'endpoint_id is required.');
    const endpoint = await this.db
      .selectFrom('webhook_endpoints')
      .select('id')
      .where('id', '=', input.endpoint_id)
      .where('account_id', '=', pr.accountId)
      .where('mode', '=', pr.mode)
      .executeTakeFirst();
    if (!endpoint) throw validation('endpoint_id', `No webhook endpoint ${input.endpoint_id} in this account and mode.`);
    const now = this.clock.now();
    const row: InboundRoutesTable = { id: newId('inr', now), account_id: pr.accountId, mode: pr.mode, priority, match: JSON.stringify(match), endpoint_id: endpoint.id, created_at: now };
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('inbound_routes').values(row).execute();
      await recordBy(tx as unknown as Executor, pr, { accountId: pr.accountId, action: 'inbound_route.created', target: { type: 'inbound_route', id: row.id }, details: { match, endpoint_id: endpoint.id, priority }, at: now });
    });
    return view(row);
  }

  async list(pr: Principal): Promise<InboundRouteView[]> {
    const rows = await this.db.selectFrom('inbound_routes').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).orderBy('priority').orderBy('created_at').execute();
    return rows.map(view);
  }

  async remove(pr: Principal, id: string): Promise<{ id: string; deleted: true }> {
    await this.db.transaction().execute(async (tx) => {
      const res = await tx.deleteFrom('inbound_routes').where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw new AppError('NOT_FOUND', `No inbound route ${id} in this account.`, { id });
      await recordBy(tx as unknown as Executor, pr, { accountId: pr.accountId, action: 'inbound_route.deleted', target: { type: 'inbound_route', id }, at: this.clock.now() });
    });
    return { id, deleted: true };
  }
}
