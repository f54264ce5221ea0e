// Workflow definitions (versioned), the events API that starts and resumes runs, and the run
// views (CONTRACT §12). The engine (workflow-engine.ts) executes the runs.
import type { Kysely } from 'kysely';
import { seesBodies, type Principal } from '../auth/scopes.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Clock } from '../clock.ts';
import { parseContactFields, type ContactService } from '../contacts/contact-service.ts';
import { AppError, notFound, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Storage } from '../storage/database.ts';
import { afterCommit, transaction, TxBatcher } from '../storage/transactions.ts';
import { EVENT_NAME, definitionView, parseDefinition, type Definition } from './workflow-definition.ts';
import type { WorkflowEngine } from './workflow-engine.ts';
import { workflowDb, type WorkflowDB, type WorkflowsTable, type WorkflowTx } from './workflow-tables.ts';

const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_DATA_BYTES = 32 * 1024;

export interface WorkflowView {
  id: string;
  object: 'workflow';
  name: string;
  enabled: boolean;
  version: number;
  trigger: { event: string };
  steps: unknown[];
  created_at: string;
  updated_at: string;
}

export class WorkflowService {
  private db: Kysely<WorkflowDB>;
  /** Events arriving together commit together (group commit); each is answered after its commit. */
  private events: TxBatcher;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private contacts: ContactService,
    private engine: WorkflowEngine,
  ) {
    this.db = workflowDb(storage);
    this.events = new TxBatcher(storage.db, 100);
  }

  private tx<T>(fn: (t: WorkflowTx) => Promise<T>): Promise<T> {
    return transaction(this.storage.db, (t) => fn(t as unknown as WorkflowTx));
  }

  private view(w: WorkflowsTable, stored: Definition): WorkflowView {
    const def = definitionView(stored);
    return { id: w.id, object: 'workflow', name: w.name, enabled: w.enabled === 1, version: w.version, trigger: def.trigger, steps: def.steps, created_at: iso(w.created_at)!, updated_at: iso(w.updated_at)! };
  }

  private async row(pr: Principal, id: string): Promise<WorkflowsTable> {
    const w = await this.db.selectFrom('workflows').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('deleted_at', 'is', null).executeTakeFirst();
    if (!w) throw notFound('workflow', id);
    return w;
  }

  async create(pr: Principal, input: unknown): Promise<WorkflowView> {
    const def = parseDefinition(input);
    const enabled = isObject(input) && input.enabled === false ? 0 : 1;
    const now = this.clock.now();
    const w: WorkflowsTable = { id: newId('wf', now), account_id: pr.accountId, mode: pr.mode, name: def.name, trigger_event: def.trigger.event, enabled, version: 1, created_at: now, updated_at: now, deleted_at: null };
    await this.tx(async (t) => {
      await t.insertInto('workflows').values(w).execute();
      await t.insertInto('workflow_versions').values({ workflow_id: w.id, version: 1, definition: JSON.stringify(def), created_at: now }).execute();
      await recordBy(t as never, pr, { accountId: pr.accountId, action: 'workflow.created', target: { type: 'workflow', id: w.id }, details: { name: def.name, version: 1, trigger: def.trigger.event }, at: now });
    });
    return this.view(w, def);
  }

  async get(pr: Principal, id: string, version?: number): Promise<WorkflowView> {
    const w = await this.row(pr, id);
    if (version !== undefined && (version < 1 || version > w.version)) throw notFound('workflow version', `${id}@${version}`);
    return this.view(w, await this.engine.definition(this.db, w.id, version ?? w.version));
  }

  async list(pr: Principal, q: { limit?: number; cursor?: string }) {
    const limit = q.limit ?? 50;
    let query = this.db.selectFrom('workflows').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('deleted_at', 'is', null);
    if (q.cursor) query = query.where('id', '<', q.cursor);
    const rows = await query.orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const data = await Promise.all(page.map(async (w) => this.view(w, await this.engine.definition(this.db, w.id, w.version))));
    return { data, next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  /**
   * PUT (a whole new definition) or PATCH (the fields given, over the current version): a change
   * to name, trigger or steps is a new version; runs already started finish on theirs. `enabled`
   * alone changes no version.
   */
  async update(pr: Principal, id: string, input: unknown, partial: boolean): Promise<WorkflowView> {
    if (!isObject(input)) throw validation('body', 'The body must be a JSON object.');
    const w = await this.row(pr, id);
    const current = await this.engine.definition(this.db, w.id, w.version);
    const { enabled, ...rest } = input;
    if (enabled !== undefined && typeof enabled !== 'boolean') throw validation('enabled', 'enabled must be true or false.');
    const changesDefinition = partial ? ['name', 'trigger', 'steps'].some((k) => rest[k] !== undefined) : true;
    const def = changesDefinition ? parseDefinition(partial ? { ...definitionView(current), ...rest } : rest) : current;
    const now = this.clock.now();
    const next: WorkflowsTable = { ...w, name: def.name, trigger_event: def.trigger.event, enabled: enabled === undefined ? w.enabled : enabled ? 1 : 0, version: changesDefinition ? w.version + 1 : w.version, updated_at: now };
    await this.tx(async (t) => {
      const res = await t
        .updateTable('workflows')
        .set({ name: next.name, trigger_event: next.trigger_event, enabled: next.enabled, version: next.version, updated_at: now })
        .where('id', '=', w.id)
        .where('version', '=', w.version)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new AppError('IDEMPOTENCY_CONFLICT', 'The workflow was changed at the same time; read it again and retry.', { id });
      if (changesDefinition) await t.insertInto('workflow_versions').values({ workflow_id: w.id, version: next.version, definition: JSON.stringify(def), created_at: now }).execute();
      await recordBy(t as never, pr, { accountId: pr.accountId, action: 'workflow.updated', target: { type: 'workflow', id: w.id }, details: { name: def.name, version: next.version, enabled: next.enabled === 1 }, at: now });
    });
    return this.view(next, def);
  }

  /** Deleted workflows start no new runs; runs under way finish on their version. */
  async remove(pr: Principal, id: string): Promise<{ id: string; object: 'workflow'; deleted: true }> {
    const w = await this.row(pr, id);
    const now = this.clock.now();
    await this.tx(async (t) => {
      await t.updateTable('workflows').set({ deleted_at: now, enabled: 0, updated_at: now }).where('id', '=', w.id).execute();
      await recordBy(t as never, pr, { accountId: pr.accountId, action: 'workflow.deleted', target: { type: 'workflow', id: w.id }, details: { name: w.name, version: w.version }, at: now });
    });
    return { id: w.id, object: 'workflow', deleted: true };
  }

  // ---- events ----

  /**
   * POST /v1/events. In ONE transaction: the contact (created or updated from `contact`), a run
   * of every enabled workflow the event triggers, the runs of this contact waiting for it
   * resumed, and the event row that makes the idempotency_key answer the same again.
   */
  async sendEvent(pr: Principal, input: unknown): Promise<{ id: string; object: 'event'; name: string; contact_id: string; runs: string[]; resumed: string[]; created_at: string }> {
    if (!isObject(input)) throw validation('body', 'The body must be a JSON object: {"name", "contact": {"phone"} | "contact_id", "data", "idempotency_key"}.');
    const name = input.name;
    if (typeof name !== 'string' || !EVENT_NAME.test(name)) throw validation('name', 'name must be an event name such as "order.placed" (letters, digits, _ . : -; at most 100).');
    const data = input.data ?? {};
    if (!isObject(data)) throw validation('data', 'data must be a JSON object.');
    if (JSON.stringify(data).length > MAX_DATA_BYTES) throw validation('data', `data is at most ${MAX_DATA_BYTES} bytes of JSON.`);
    const key = input.idempotency_key;
    if (key !== undefined && key !== null && (typeof key !== 'string' || key.length === 0 || key.length > 255)) throw validation('idempotency_key', 'idempotency_key is a string of 1 to 255 characters.');
    if ((input.contact === undefined) === (input.contact_id === undefined)) throw validation('contact', 'Give exactly one of contact ({"phone", …}) or contact_id.');
    let fields: ReturnType<typeof parseContactFields> | null = null;
    if (input.contact !== undefined) {
      if (!isObject(input.contact)) throw validation('contact', 'contact must be an object with at least a phone.');
      try {
        fields = parseContactFields(input.contact);
      } catch (err) {
        if (err instanceof AppError && typeof err.details.field === 'string') throw new AppError(err.code, err.message, { ...err.details, field: `contact.${err.details.field}` });
        throw err;
      }
      if (!fields.phone) throw validation('contact.phone', 'contact.phone is required.');
    } else if (typeof input.contact_id !== 'string') throw validation('contact_id', 'contact_id must be a string.');

    const replay = async () => {
      if (typeof key !== 'string') return null;
      const e = await this.db.selectFrom('workflow_events').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('idempotency_key', '=', key).executeTakeFirst();
      return e ? { id: e.id, object: 'event' as const, name: e.name, contact_id: e.contact_id, runs: JSON.parse(e.runs) as string[], resumed: [], created_at: iso(e.created_at)! } : null;
    };
    const earlier = await replay();
    if (earlier) return earlier;
    const now = this.clock.now();
    const id = newId('evt', now);
    try {
      return await this.events.run(async (raw) => {
        const t = raw as unknown as WorkflowTx;
        let contactId: string;
        if (fields) {
          const c = await this.contacts.ensure(t as never, pr.accountId, pr.mode, fields.phone!);
          const patch: Record<string, unknown> = {};
          if (fields.name !== undefined) patch.name = fields.name;
          if (fields.time_zone !== undefined) patch.time_zone = fields.time_zone;
          if (fields.owner !== undefined) patch.owner = fields.owner;
          if (fields.tags !== undefined) patch.tags = JSON.stringify([...new Set([...(JSON.parse(c.tags) as string[]), ...fields.tags])]);
          if (fields.custom_fields !== undefined) patch.custom_fields = JSON.stringify({ ...JSON.parse(c.custom_fields), ...fields.custom_fields });
          if (Object.keys(patch).length) await t.updateTable('contacts').set({ ...patch, updated_at: now }).where('id', '=', c.id).execute();
          contactId = c.id;
        } else {
          const c = await t.selectFrom('contacts').select('id').where('id', '=', input.contact_id as string).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
          if (!c) throw new AppError('NOT_FOUND', `No contact ${String(input.contact_id)} in this account.`, { field: 'contact_id', id: input.contact_id });
          contactId = c.id;
        }
        const event = { id, name };
        const workflows = await t.selectFrom('workflows').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('trigger_event', '=', name).where('enabled', '=', 1).where('deleted_at', 'is', null).orderBy('id').execute();
        const resumed = await this.engine.resumeOnEvent(t, contactId, { id, name, data }, now);
        const runs: string[] = [];
        for (const w of workflows) runs.push(await this.engine.startRun(t, w, await this.engine.definition(t, w.id, w.version), contactId, event, data, now));
        await t.insertInto('workflow_events').values({ id, account_id: pr.accountId, mode: pr.mode, name, contact_id: contactId, idempotency_key: typeof key === 'string' ? key : null, data: JSON.stringify(data), runs: JSON.stringify(runs), created_at: now }).execute();
        if (runs.length || resumed.length) afterCommit(t as never, () => this.engine.wake());
        return { id, object: 'event' as const, name, contact_id: contactId, runs, resumed, created_at: iso(now)! };
      });
    } catch (err) {
      // The same key at the same moment from another request: its answer is the answer.
      const again = await replay().catch(() => null);
      if (again) return again;
      throw err;
    }
  }

  // ---- runs ----

  async runs(pr: Principal, workflowId: string, q: { status?: string; limit?: number; cursor?: string }) {
    await this.row(pr, workflowId);
    const limit = q.limit ?? 50;
    let query = this.db.selectFrom('workflow_runs').selectAll().where('workflow_id', '=', workflowId).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (q.status) query = query.where('status', '=', q.status as never);
    if (q.cursor) query = query.where('id', '<', q.cursor);
    const rows = await query.orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { data: await Promise.all(page.map((r) => this.runView(pr, r))), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  async run(pr: Principal, id: string) {
    const r = await this.db.selectFrom('workflow_runs').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!r) throw notFound('run', id);
    return this.runView(pr, r);
  }

  private async runView(pr: Principal, r: WorkflowDB['workflow_runs']) {
    const steps = await this.db.selectFrom('workflow_steps').selectAll().where('run_id', '=', r.id).orderBy('idx').execute();
    const bodies = seesBodies(pr);
    return {
      id: r.id,
      object: 'workflow_run' as const,
      status: r.status,
      workflow_id: r.workflow_id,
      version: r.version,
      contact_id: r.contact_id,
      event_id: r.event_id,
      current_step: r.current_step,
      error: r.error,
      due_at: r.status === 'waiting' ? iso(r.due_at) : null,
      steps: steps.map((s) => {
        const result = s.result ? (JSON.parse(s.result) as Record<string, unknown>) : undefined;
        // A reply's text is a message body: not for those who may not read bodies.
        if (result && !bodies && 'body' in result) delete result.body;
        return { id: s.step_id, type: s.type, status: s.status, started_at: iso(s.started_at)!, finished_at: iso(s.finished_at), ...(s.message_id && { message_id: s.message_id }), ...(result && { result }) };
      }),
      created_at: iso(r.created_at)!,
      updated_at: iso(r.updated_at)!,
      finished_at: iso(r.finished_at),
    };
  }
}
