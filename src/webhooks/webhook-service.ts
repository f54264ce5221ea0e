// Webhook endpoints and their deliveries, as the API sees them: create, list, change, delete an
// endpoint; rotate its secret; read the delivery log; retry one delivery; replay a time range.
// Also the per-account signing secret of status callbacks. The worker (webhook-worker.ts) does
// the sending; this module never makes an HTTP request.
//
// Tenancy: every query here is scoped by (account_id, mode) of the caller. An endpoint belongs to
// the mode of the token that created it and receives only that mode's events; anything outside
// the caller's account and mode is NOT_FOUND, never FORBIDDEN (no existence leak).
import { recordBy, type AuditEntry } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { notFound, validation } from '../errors.ts';
import { EVENT_TYPES } from '../events/outbox.ts';
import { newId } from '../ids.ts';
import { checkUrl } from '../net/url-policy.ts';
import type { Executor, Storage } from '../storage/database.ts';
import { newSecret, type SigningSecrets } from './signing.ts';
import { webhookDb, type WebhookAttemptsTable, type WebhookDeliveriesTable, type WebhookEndpointsTable } from './webhook-tables.ts';

export const DEFAULT_OVERLAP_S = 86_400;
const MAX_OVERLAP_S = 7 * 86_400;
const MAX_ATTEMPTS_SHOWN = 50;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export interface EndpointView {
  id: string;
  object: 'webhook_endpoint';
  url: string;
  description: string | null;
  events: string[];
  mode: string;
  enabled: boolean;
  include_body: boolean;
  disabled_reason: string | null;
  previous_secret_expires_at: string | null;
  created_at: string;
  updated_at: string;
  /** Only in the answers of create and rotate-secret: the secret is shown once. */
  secret?: string;
}

export function endpointView(r: WebhookEndpointsTable, withSecret = false): EndpointView {
  const v: EndpointView = {
    id: r.id,
    object: 'webhook_endpoint',
    url: r.url,
    description: r.description,
    events: JSON.parse(r.events),
    mode: r.mode,
    enabled: r.enabled === 1,
    include_body: r.include_body !== 0,
    disabled_reason: r.disabled_reason,
    previous_secret_expires_at: iso(r.previous_secret_expires_at),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
  if (withSecret) v.secret = r.secret;
  return v;
}

type AttemptRow = Omit<WebhookAttemptsTable, 'id'> & { id: number };

export function deliveryView(d: WebhookDeliveriesTable, attempts: AttemptRow[] = []) {
  return {
    id: d.id,
    object: 'webhook_delivery' as const,
    endpoint_id: d.endpoint_id,
    url: d.url,
    event_id: Number(d.outbox_id),
    event_type: d.event_type,
    message_id: d.message_id,
    status: d.status,
    attempt_count: d.attempts,
    next_attempt_at: d.status === 'pending' ? iso(d.next_attempt_at) : null,
    last_status_code: d.last_status_code,
    last_error: d.last_error,
    created_at: iso(d.created_at)!,
    delivered_at: iso(d.delivered_at),
    attempts: attempts.map((a) => ({
      attempt: a.attempt,
      request_id: a.request_id,
      at: iso(a.at)!,
      url: a.url,
      response_status: a.response_status,
      latency_ms: a.latency_ms,
      response_body: a.response_body,
      error: a.error,
    })),
  };
}

export interface EndpointInput {
  url?: unknown;
  events?: unknown;
  description?: unknown;
  enabled?: unknown;
  include_body?: unknown;
}

export class WebhookService {
  private db;

  constructor(
    storage: Storage,
    private clock: Clock,
    private allowPrivateUrls: boolean,
  ) {
    this.db = webhookDb(storage);
  }

  private checkEvents(value: unknown): string[] {
    if (!Array.isArray(value)) throw validation('events', 'events must be an array of event types (empty for all).');
    const out: string[] = [];
    value.forEach((e, i) => {
      if (typeof e !== 'string' || !(EVENT_TYPES as readonly string[]).includes(e)) {
        throw validation(`events[${i}]`, `events[${i}] is not an event type; use one of ${EVENT_TYPES.join(', ')}.`, { allowed: EVENT_TYPES });
      }
      if (!out.includes(e)) out.push(e);
    });
    return out;
  }

  private checkIncludeBody(value: unknown): boolean | undefined {
    if (value === undefined) return undefined;
    if (typeof value !== 'boolean') throw validation('include_body', 'include_body must be true or false.');
    return value;
  }

  private checkDescription(value: unknown): string | null {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' || value.length > 500) throw validation('description', 'description must be a string of at most 500 characters.');
    return value;
  }

  /** The audit entry of an endpoint change, in the change's transaction (webhook tables share the database). */
  private audit(tx: unknown, pr: Principal, action: string, id: string, details: Record<string, unknown> = {}): Promise<void> {
    const entry: Omit<AuditEntry, 'actor' | 'ip'> = { accountId: pr.accountId, mode: pr.mode, action, target: { type: 'webhook_endpoint', id }, details, at: this.clock.now() };
    return recordBy(tx as Executor, pr, entry);
  }

  async create(pr: Principal, input: EndpointInput): Promise<EndpointView> {
    const url = checkUrl(input.url, 'url', this.allowPrivateUrls);
    const events = input.events === undefined ? [] : this.checkEvents(input.events);
    const description = this.checkDescription(input.description);
    if (input.enabled !== undefined && typeof input.enabled !== 'boolean') throw validation('enabled', 'enabled must be true or false.');
    const includeBody = this.checkIncludeBody(input.include_body);
    const now = this.clock.now();
    const row: WebhookEndpointsTable = {
      id: newId('we', now),
      account_id: pr.accountId,
      mode: pr.mode,
      url,
      description,
      events: JSON.stringify(events),
      secret: newSecret(),
      previous_secret: null,
      previous_secret_expires_at: null,
      enabled: input.enabled === false ? 0 : 1,
      disabled_reason: input.enabled === false ? 'disabled by request' : null,
      include_body: includeBody === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    };
    await this.db.transaction().execute(async (tx) => {
      await tx.insertInto('webhook_endpoints').values(row).execute();
      await this.audit(tx, pr, 'webhook.created', row.id, { url: urlForAudit(url), events, enabled: row.enabled === 1, include_body: row.include_body === 1 });
    });
    return endpointView(row, true);
  }

  private async row(pr: Principal, id: string): Promise<WebhookEndpointsTable> {
    const row = await this.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw notFound('webhook endpoint', id);
    return row;
  }

  async get(pr: Principal, id: string): Promise<EndpointView> {
    return endpointView(await this.row(pr, id));
  }

  async list(pr: Principal, opts: { limit?: number; cursor?: string } = {}) {
    const limit = opts.limit ?? 50;
    let q = this.db.selectFrom('webhook_endpoints').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (opts.cursor) q = q.where('id', '<', opts.cursor);
    const rows = await q.orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { data: page.map((r) => endpointView(r)), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  async update(pr: Principal, id: string, input: EndpointInput): Promise<EndpointView> {
    const row = await this.row(pr, id);
    const now = this.clock.now();
    const patch: Partial<WebhookEndpointsTable> = { updated_at: now };
    if (input.url !== undefined) patch.url = checkUrl(input.url, 'url', this.allowPrivateUrls);
    if (input.events !== undefined) patch.events = JSON.stringify(this.checkEvents(input.events));
    if (input.description !== undefined) patch.description = this.checkDescription(input.description);
    const includeBody = this.checkIncludeBody(input.include_body);
    if (includeBody !== undefined) patch.include_body = includeBody ? 1 : 0;
    let reenabled = false;
    let disabled = false;
    if (input.enabled !== undefined) {
      if (typeof input.enabled !== 'boolean') throw validation('enabled', 'enabled must be true or false.');
      patch.enabled = input.enabled ? 1 : 0;
      patch.disabled_reason = input.enabled ? null : 'disabled by request';
      reenabled = input.enabled && row.enabled === 0;
      disabled = !input.enabled && row.enabled === 1;
    }
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('webhook_endpoints').set(patch).where('id', '=', id).execute();
      // Turned back on: what waited while it was off goes now, with a fresh retry window.
      if (reenabled) {
        await tx
          .updateTable('webhook_deliveries')
          .set({ next_attempt_at: now, schedule_started_at: now, updated_at: now })
          .where('endpoint_id', '=', id)
          .where('status', '=', 'pending')
          .execute();
      }
      // Turned off: what is pending is parked (no due time) until it is turned on again.
      if (disabled) {
        await tx.updateTable('webhook_deliveries').set({ next_attempt_at: null, updated_at: now }).where('endpoint_id', '=', id).where('status', '=', 'pending').execute();
      }
      const changed = { url: patch.url === undefined ? undefined : urlForAudit(patch.url), events: patch.events === undefined ? undefined : JSON.parse(patch.events), description: patch.description, enabled: patch.enabled === undefined ? undefined : patch.enabled === 1, include_body: patch.include_body === undefined ? undefined : patch.include_body === 1 };
      await this.audit(tx, pr, 'webhook.updated', id, JSON.parse(JSON.stringify(changed)));
    });
    return endpointView({ ...row, ...patch });
  }

  async remove(pr: Principal, id: string): Promise<{ id: string; object: 'webhook_endpoint'; deleted: true }> {
    await this.row(pr, id);
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('webhook_attempts').where('delivery_id', 'in', (eb) => eb.selectFrom('webhook_deliveries as wd').select('wd.id').where('wd.endpoint_id', '=', id)).execute();
      await tx.deleteFrom('webhook_deliveries').where('endpoint_id', '=', id).execute();
      await tx.deleteFrom('webhook_endpoints').where('id', '=', id).execute();
      await this.audit(tx, pr, 'webhook.deleted', id);
    });
    return { id, object: 'webhook_endpoint', deleted: true };
  }

  /** A new secret, shown once; the old one keeps signing (alongside) for `overlap_seconds`. */
  async rotateSecret(pr: Principal, id: string, input: { overlap_seconds?: unknown } = {}): Promise<EndpointView> {
    const overlap = this.checkOverlap(input.overlap_seconds);
    const row = await this.row(pr, id);
    const now = this.clock.now();
    const patch = { secret: newSecret(), previous_secret: row.secret, previous_secret_expires_at: now + overlap * 1000, updated_at: now };
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('webhook_endpoints').set(patch).where('id', '=', id).execute();
      await this.audit(tx, pr, 'webhook.secret_rotated', id, { overlap_seconds: overlap });
    });
    return endpointView({ ...row, ...patch }, true);
  }

  private checkOverlap(value: unknown): number {
    if (value === undefined || value === null) return DEFAULT_OVERLAP_S;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_OVERLAP_S) {
      throw validation('overlap_seconds', `overlap_seconds must be a whole number from 0 to ${MAX_OVERLAP_S}.`);
    }
    return value;
  }

  /** The secret that signs this account's status callbacks (created on first use). */
  async callbackSecrets(accountId: string, mode: string): Promise<SigningSecrets & { created_at: number; updated_at: number }> {
    const read = () => this.db.selectFrom('webhook_callback_secrets').selectAll().where('account_id', '=', accountId).where('mode', '=', mode).executeTakeFirst();
    const existing = await read();
    if (existing) return existing;
    const now = this.clock.now();
    await this.db
      .insertInto('webhook_callback_secrets')
      .values({ account_id: accountId, mode, secret: newSecret(), previous_secret: null, previous_secret_expires_at: null, created_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['account_id', 'mode']).doNothing())
      .execute();
    return (await read())!;
  }

  async callbackSecretView(pr: Principal) {
    const s = await this.callbackSecrets(pr.accountId, pr.mode);
    return { object: 'webhook_callback_secret' as const, mode: pr.mode, secret: s.secret, previous_secret_expires_at: iso(s.previous_secret_expires_at), updated_at: iso(s.updated_at)! };
  }

  async rotateCallbackSecret(pr: Principal, input: { overlap_seconds?: unknown } = {}) {
    const overlap = this.checkOverlap(input.overlap_seconds);
    const s = await this.callbackSecrets(pr.accountId, pr.mode);
    const now = this.clock.now();
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('webhook_callback_secrets')
        .set({ secret: newSecret(), previous_secret: s.secret, previous_secret_expires_at: now + overlap * 1000, updated_at: now })
        .where('account_id', '=', pr.accountId)
        .where('mode', '=', pr.mode)
        .execute();
      await recordBy(tx as unknown as Executor, pr, { accountId: pr.accountId, mode: pr.mode, action: 'webhook.callback_secret_rotated', target: null, details: { overlap_seconds: overlap }, at: now });
    });
    return this.callbackSecretView(pr);
  }

  private async withAttempts(rows: WebhookDeliveriesTable[]) {
    if (rows.length === 0) return [];
    const attempts = await this.db
      .selectFrom('webhook_attempts')
      .selectAll()
      .where('delivery_id', 'in', rows.map((r) => r.id))
      .orderBy('id')
      .execute();
    const by = new Map<string, AttemptRow[]>();
    for (const a of attempts) {
      const list = by.get(a.delivery_id) ?? [];
      list.push(a as AttemptRow);
      by.set(a.delivery_id, list);
    }
    return rows.map((r) => deliveryView(r, (by.get(r.id) ?? []).slice(-MAX_ATTEMPTS_SHOWN)));
  }

  /** Deliveries newest first: of one endpoint, or (endpointId null) of every target of the account. */
  async deliveries(pr: Principal, endpointId: string | null, opts: { status?: string; message_id?: string; limit?: number; cursor?: string } = {}) {
    if (endpointId !== null) await this.row(pr, endpointId);
    const limit = opts.limit ?? 50;
    let q = this.db.selectFrom('webhook_deliveries').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (endpointId !== null) q = q.where('endpoint_id', '=', endpointId);
    if (opts.status) q = q.where('status', '=', opts.status as WebhookDeliveriesTable['status']);
    if (opts.message_id) q = q.where('message_id', '=', opts.message_id);
    if (opts.cursor) q = q.where('id', '<', opts.cursor);
    const rows = await q.orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { data: await this.withAttempts(page), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  /** Sends one delivery again now (failed, delivered, or pending and waiting), with a fresh window. */
  async retryDelivery(pr: Principal, id: string) {
    const row = await this.db.selectFrom('webhook_deliveries').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw notFound('webhook delivery', id);
    const now = this.clock.now();
    const patch = { status: 'pending' as const, next_attempt_at: now, schedule_started_at: now, updated_at: now };
    // A delivery being sent right now keeps its lease; it is simply due again when that ends.
    await this.db.updateTable('webhook_deliveries').set(patch).where('id', '=', id).execute();
    const [view] = await this.withAttempts([{ ...row, ...patch }]);
    return view;
  }

  /**
   * Bulk replay: every delivery of the endpoint made in [since, until) (its event's time, give or
   * take the fan-out's lag of milliseconds) and that
   * `failed` (default) — or, with status `all`, also the delivered ones — goes again, in order
   * per message.
   */
  async replay(pr: Principal, endpointId: string, input: { since?: unknown; until?: unknown; status?: unknown }) {
    await this.row(pr, endpointId);
    const now = this.clock.now();
    const since = this.checkTime(input.since, 'since');
    if (since === null) throw validation('since', 'since is required (ISO 8601).');
    const until = this.checkTime(input.until, 'until') ?? now;
    if (until <= since) throw validation('until', 'until must be after since.');
    const which = input.status ?? 'failed';
    if (which !== 'failed' && which !== 'all') throw validation('status', 'status must be failed or all.');
    const statuses: Array<'failed' | 'delivered'> = which === 'all' ? ['failed', 'delivered'] : ['failed'];
    const res = await this.db
      .updateTable('webhook_deliveries')
      .set({ status: 'pending', next_attempt_at: now, schedule_started_at: now, updated_at: now })
      .where('endpoint_id', '=', endpointId)
      .where('status', 'in', statuses)
      .where('created_at', '>=', since)
      .where('created_at', '<', until)
      .executeTakeFirst();
    return { endpoint_id: endpointId, replayed: Number(res.numUpdatedRows), since: iso(since)!, until: iso(until)! };
  }

  private checkTime(value: unknown, field: string): number | null {
    if (value === undefined || value === null) return null;
    const t = typeof value === 'string' ? Date.parse(value) : NaN;
    if (Number.isNaN(t)) throw validation(field, `${field} must be an ISO 8601 date-time.`);
    return t;
  }
}

/** An endpoint URL as the audit log keeps it: without its query, which may carry a token. */
function urlForAudit(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}
