// The workflow engine: the worker that moves runs from step to step.
//
// Terminology:
//   run        — one execution of one version of a workflow for one contact (`run_…`). The run
//                row IS the job; its `due_at` is its only timer (a wait, a timeout, a retry, a
//                lease), so a restart loses nothing: the next worker finds the row due.
//   step row   — one row per step a run entered (workflow_steps, numbered by `idx`), updated
//                when the step finishes. A step visited twice (a loop) has two rows.
//   claim      — every change of a run's state is `UPDATE … WHERE claim_seq = <value read>` that
//                also increments claim_seq, in the SAME transaction as the step rows it writes.
//                Whoever loses the race (two workers, a timeout against a reply) changes nothing.
//   lease      — a worker executing a step first pushes the run's due_at `leaseMs` ahead (a
//                claim). If it dies, the run falls due again and another worker retries the step.
//   signal     — a row of workflow_signals: an outbox event (a receipt, a reply, an opt-out) the
//                webhook fan-out copied for us in the same transaction that marked it fanned out
//                (workflow-signals.ts), so none is missed across a restart. Deleted in the same
//                transaction that applies it.
//
// A step is never executed twice for one run: the claim guards the transition. The side effects
// outside our database are made safe to repeat: a send uses the idempotency key
// `workflow:<run>:<step row>`, so a crash between the send and its record replays the same
// message instead of sending another; a webhook POST carries the same `webhook-id` on every
// retry, for the receiver to de-duplicate (a crash mid-POST can repeat it: at least once).
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { BackgroundLoop } from '../security/background-loop.ts';
import { OPT_IN_KEYWORDS, OPT_OUT_KEYWORDS, keywordOf } from '../consent/messaging-settings.ts';
import type { ContactService } from '../contacts/contact-service.ts';
import { AppError } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import { newId } from '../ids.ts';
import type { MessageService } from '../messages/message-service.ts';
import { guardedFetch, type Resolver } from '../net/guarded-fetch.ts';
import type { Storage } from '../storage/database.ts';
import { afterCommit, transaction, TxBatcher } from '../storage/transactions.ts';
import { compile, render } from '../templates/template-render.ts';
import { contactVariables } from '../templates/template-service.ts';
import { activeSecrets, signedHeaders } from '../webhooks/signing.ts';
import type { WebhookService } from '../webhooks/webhook-service.ts';
import { compileExpression, END, following, parseDuration, plainValue, type Condition, type Definition, type Step, type WaitForStep } from './workflow-definition.ts';
import { workflowDb, type RunStatus, type WorkflowDB, type WorkflowExecutor, type WorkflowRunsTable, type WorkflowTx } from './workflow-tables.ts';

export type RunRow = WorkflowRunsTable;

export interface RunContext {
  data: Record<string, unknown>;
  event: { id: string; name: string };
  steps: Record<string, unknown>;
}

/** A waiting run's conditions, with the correlation value each event condition expects. */
type StoredCondition = Condition & { value?: unknown };

export interface EngineOptions {
  workerId: string;
  pollMs: number;
  leaseMs: number;
  /** Due runs claimed per round, and how many of them execute at once. */
  batch: number;
  concurrency: number;
  allowPrivateUrls: boolean;
  resolver?: Resolver;
}

/** A run that visits more steps than this is stopped as failed (a goto loop). */
const MAX_STEP_VISITS = 1000;
const WEBHOOK_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 3600_000;

export const workflowPrincipal = (r: Pick<RunRow, 'account_id' | 'mode' | 'workflow_id'>): Principal => ({
  accountId: r.account_id,
  mode: r.mode as Principal['mode'],
  scopes: ['messages:send'],
  kind: 'api_key',
  credentialId: `workflow:${r.workflow_id}`,
});

/** Thrown inside a transaction to roll it back and try again later (a run changed under us). */
class Busy extends Error {}

export class WorkflowEngine {
  private db: Kysely<WorkflowDB>;
  private definitions = new Map<string, Definition>();
  private loop: BackgroundLoop;
  private finishedListeners: Array<() => void> = [];
  /** Step records of many runs commit together (group commit): the timer-heavy path is commit-bound. */
  private batcher: TxBatcher;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private messages: MessageService,
    private contacts: ContactService,
    private webhooks: WebhookService,
    private log: Logger,
    private opts: EngineOptions,
  ) {
    this.db = workflowDb(storage);
    this.batcher = new TxBatcher(storage.db, 200);
    this.loop = new BackgroundLoop('workflow engine round', () => this.runOnce(), log, () => this.untilNextTimer());
  }

  private tx<T>(fn: (t: WorkflowTx) => Promise<T>): Promise<T> {
    return this.batcher.run((t) => fn(t as unknown as WorkflowTx));
  }

  /** Called after a run finished with an outbox event (the webhook worker has work). */
  onFinished(fn: () => void): void {
    this.finishedListeners.push(fn);
  }

  start(): void {
    this.loop.start();
  }

  stop(): Promise<void> {
    return this.loop.stop();
  }

  wake(): void {
    this.loop.wake();
  }

  /** Sleep until the next timer, at most pollMs (a signal or a new run wakes the loop sooner). */
  private async untilNextTimer(): Promise<number> {
    const next = await this.db.selectFrom('workflow_runs').select((eb) => eb.fn.min('due_at').as('due')).where('due_at', 'is not', null).executeTakeFirst();
    const due = next?.due === null || next?.due === undefined ? null : Number(next.due);
    return due === null ? this.opts.pollMs : Math.max(0, Math.min(this.opts.pollMs, due - this.clock.now()));
  }

  /** One round: pending signals, then due runs. Returns how much work was done (0: none). */
  async runOnce(): Promise<number> {
    let n = await this.applySignals();
    n += await this.runDueSteps();
    return n;
  }

  async definition(db: WorkflowExecutor, workflowId: string, version: number): Promise<Definition> {
    const key = `${workflowId}:${version}`;
    const hit = this.definitions.get(key);
    if (hit) return hit;
    const row = await db.selectFrom('workflow_versions').select('definition').where('workflow_id', '=', workflowId).where('version', '=', version).executeTakeFirstOrThrow();
    const def = JSON.parse(row.definition) as Definition;
    if (this.definitions.size > 2000) this.definitions.delete(this.definitions.keys().next().value!);
    this.definitions.set(key, def);
    return def;
  }

  // ---- transitions: each is conditional on the claim_seq read, inside the caller's transaction ----

  /** A new run at its first step, due now. */
  async startRun(tx: WorkflowTx, w: { id: string; version: number; account_id: string; mode: string }, def: Definition, contactId: string, event: { id: string; name: string }, data: Record<string, unknown>, now: number): Promise<string> {
    const id = newId('run', now);
    const context: RunContext = { data, event, steps: {} };
    const first = def.steps[0];
    await tx
      .insertInto('workflow_runs')
      .values({
        id,
        account_id: w.account_id,
        mode: w.mode,
        workflow_id: w.id,
        version: w.version,
        contact_id: contactId,
        event_id: event.id,
        status: 'running',
        current_step: first.id,
        step_index: 1,
        claim_seq: 0,
        due_at: now,
        wait: null,
        wait_event: null,
        wait_reply: 0,
        attempts: 0,
        context: JSON.stringify(context),
        error: null,
        created_at: now,
        updated_at: now,
        finished_at: null,
      })
      .execute();
    await tx.insertInto('workflow_steps').values({ run_id: id, idx: 1, step_id: first.id, type: first.type, status: 'running', started_at: now, finished_at: null, message_id: null, result: null }).execute();
    return id;
  }

  /**
   * Finishes the run's current step with `status` (and its result, kept in the context under the
   * step's id), then moves to `goto`: the next step's row, due now, or the end of the run.
   */
  private async finishStep(tx: WorkflowTx, run: RunRow, o: { status: string; goto: string; result?: Record<string, unknown>; messageId?: string | null; hold?: number }, now: number): Promise<RunRow | null> {
    const ctx = JSON.parse(run.context) as RunContext;
    if (o.result) ctx.steps[run.current_step!] = o.result;
    await this.closeStepRow(tx, run, o.status, o.result, o.messageId ?? null, now);
    if (o.goto === END) return this.finalize(tx, { ...run, context: JSON.stringify(ctx) }, 'completed', null, now, false);
    if (run.step_index >= MAX_STEP_VISITS) return this.finalize(tx, run, 'failed', `The run visited ${MAX_STEP_VISITS} steps: a goto loop?`, now, false);
    const def = await this.definition(tx, run.workflow_id, run.version);
    const next = def.steps.find((s) => s.id === o.goto)!;
    // `hold`: the engine goes straight on with the next step, so it keeps its lease.
    const patch = { current_step: next.id, step_index: run.step_index + 1, claim_seq: run.claim_seq + 1, status: 'running' as const, due_at: o.hold ?? now, wait: null, wait_event: null, wait_reply: 0, attempts: 0, context: JSON.stringify(ctx), updated_at: now };
    const res = await tx.updateTable('workflow_runs').set(patch).where('id', '=', run.id).where('claim_seq', '=', run.claim_seq).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new Busy();
    await tx.insertInto('workflow_steps').values({ run_id: run.id, idx: run.step_index + 1, step_id: next.id, type: next.type, status: 'running', started_at: now, finished_at: null, message_id: null, result: null }).execute();
    return { ...run, ...patch };
  }

  private async closeStepRow(tx: WorkflowTx, run: RunRow, status: string, result: Record<string, unknown> | undefined, messageId: string | null, now: number): Promise<void> {
    const patch: Record<string, unknown> = { status, finished_at: now };
    if (result) patch.result = JSON.stringify(result);
    if (messageId) patch.message_id = messageId;
    await tx.updateTable('workflow_steps').set(patch).where('run_id', '=', run.id).where('idx', '=', run.step_index).execute();
  }

  /** Ends the run; completed and failed runs announce themselves (workflow.completed / .failed). */
  private async finalize(tx: WorkflowTx, run: RunRow, status: Exclude<RunStatus, 'running' | 'waiting'>, error: string | null, now: number, closeStep = true, stepStatus = 'canceled'): Promise<null> {
    const res = await tx
      .updateTable('workflow_runs')
      .set({ status, current_step: null, claim_seq: run.claim_seq + 1, due_at: null, wait: null, wait_event: null, wait_reply: 0, context: run.context, error, finished_at: now, updated_at: now })
      .where('id', '=', run.id)
      .where('claim_seq', '=', run.claim_seq)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new Busy();
    if (closeStep) await tx.updateTable('workflow_steps').set({ status: stepStatus, finished_at: now }).where('run_id', '=', run.id).where('idx', '=', run.step_index).where('finished_at', 'is', null).execute();
    if (status !== 'canceled') {
      const data = { id: run.id, object: 'workflow_run', workflow_id: run.workflow_id, version: run.version, contact_id: run.contact_id, event_id: run.event_id, status, error, finished_at: new Date(now).toISOString() };
      await appendOutbox(tx as never, [{ accountId: run.account_id, mode: run.mode, type: status === 'completed' ? 'workflow.completed' : 'workflow.failed', messageId: null, data, at: now }]);
      afterCommit(tx as never, () => {
        for (const fn of this.finishedListeners) fn();
      });
    }
    return null;
  }

  private async enterWait(tx: WorkflowTx, run: RunRow, w: { due: number | null; wait: StoredCondition[] | null }, now: number): Promise<RunRow> {
    const events = (w.wait ?? []).filter((c) => c.kind === 'event').map((c) => (c as { event: string }).event);
    const patch = {
      status: 'waiting' as const,
      claim_seq: run.claim_seq + 1,
      due_at: w.due,
      wait: w.wait ? JSON.stringify(w.wait) : null,
      wait_event: events.length ? `|${events.join('|')}|` : null,
      wait_reply: (w.wait ?? []).some((c) => c.kind === 'reply') ? 1 : 0,
      updated_at: now,
    };
    const res = await tx.updateTable('workflow_runs').set(patch).where('id', '=', run.id).where('claim_seq', '=', run.claim_seq).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw new Busy();
    await tx.updateTable('workflow_steps').set({ status: 'waiting' }).where('run_id', '=', run.id).where('idx', '=', run.step_index).execute();
    return { ...run, ...patch };
  }

  // ---- due runs ----

  private async runDueSteps(): Promise<number> {
    const now = this.clock.now();
    // The claim: due runs get a lease (due_at pushed ahead) and a new claim_seq in ONE statement.
    // On PostgreSQL, SKIP LOCKED lets several workers claim disjoint runs at once.
    let due = this.db.selectFrom('workflow_runs').select('id').where('due_at', '<=', now).orderBy('due_at').limit(this.opts.batch);
    if (this.storage.dialect.name === 'postgres') due = due.forUpdate().skipLocked();
    const claimed = await this.db
      .updateTable('workflow_runs')
      .set((eb) => ({ due_at: now + this.opts.leaseMs, claim_seq: eb('claim_seq', '+', 1) }))
      .where('id', 'in', due)
      .where('due_at', '<=', now)
      .returningAll()
      .execute();
    if (claimed.length === 0) return 0;
    let i = 0;
    let done = 0;
    const worker = async () => {
      while (i < claimed.length) {
        const r = claimed[i++];
        try {
          done += await this.advance({ ...r, due_at: r.due_at === null ? null : Number(r.due_at) });
        } catch (err) {
          this.log.error({ err, run_id: r.id }, 'workflow step failed; retried when its lease ends');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, claimed.length) }, worker));
    return done;
  }

  /** Executes the claimed run's steps while they are due now (a few in a row, under the lease). */
  private async advance(claimed: RunRow): Promise<number> {
    let run = claimed;
    for (let hop = 1; hop <= 25; hop++) {
      let next: RunRow | null;
      try {
        next = await this.execute(run);
      } catch (err) {
        if (err instanceof Busy) return hop;
        throw err;
      }
      if (!next || next.status !== 'running') return hop;
      run = next;
    }
    // Enough for one round: the run is due again now, for any worker.
    await this.db.updateTable('workflow_runs').set({ due_at: this.clock.now() }).where('id', '=', run.id).where('claim_seq', '=', run.claim_seq).execute();
    return 25;
  }

  /** Executes the run's current step; returns the run when it goes straight on (still leased). */
  private async execute(run: RunRow): Promise<RunRow | null> {
    const def = await this.definition(this.db, run.workflow_id, run.version);
    const step = def.steps.find((s) => s.id === run.current_step);
    const now = this.clock.now();
    if (!step) {
      return this.tx((t) => this.finalize(t, run, 'failed', `The run is at an unknown step ${run.current_step}.`, now));
    }
    const hold = now + this.opts.leaseMs;
    const tx = <T>(fn: (t: WorkflowTx) => Promise<T>) => this.tx(fn);
    if (run.status === 'waiting') {
      // Its timer: the end of a wait, or a wait_for's timeout.
      if (step.type === 'wait') return tx((t) => this.finishStep(t, run, { status: 'completed', goto: following(def, step), hold }, now));
      return tx((t) => this.finishStep(t, run, { status: 'timed_out', result: { matched: 'timeout' }, goto: (step as WaitForStep).on_timeout ?? following(def, step), hold }, now));
    }
    switch (step.type) {
      case 'send':
        return this.send(run, def, step, now);
      case 'wait': {
        const due = this.waitUntil(run, step, now);
        if (typeof due === 'string') return tx((t) => this.fail(t, run, def, step, due, now, {}, hold));
        if (due <= now) return tx((t) => this.finishStep(t, run, { status: 'completed', goto: following(def, step), hold }, now));
        await tx((t) => this.enterWait(t, run, { due, wait: null }, now));
        return null;
      }
      case 'wait_for':
        return this.waitFor(run, def, step, now);
      case 'branch': {
        const env = await this.expressionContext(run);
        const errors: string[] = [];
        let goto = step.else ?? following(def, step);
        let matched: number | null = null;
        for (const [i, c] of step.conditions.entries()) {
          try {
            if (compileExpression(c.if)(env) === true) {
              goto = c.goto;
              matched = i;
              break;
            }
          } catch (err) {
            // A field the event did not carry: the condition does not hold (use has() to test).
            errors.push(`conditions[${i}]: ${(err as Error).message.split('\n')[0]}`);
          }
        }
        return tx((t) => this.finishStep(t, run, { status: 'completed', result: { matched, goto, ...(errors.length && { errors }) }, goto, hold }, now));
      }
      case 'webhook':
        return this.webhook(run, def, step, now);
      case 'update_contact': {
        const values = await this.templateValues(run);
        const patch: Record<string, unknown> = {};
        try {
          if (step.name !== undefined) patch.name = render(compile(step.name), values);
          if (step.time_zone !== undefined) patch.time_zone = step.time_zone;
          if (step.custom_fields) patch.custom_fields = Object.fromEntries(Object.entries(step.custom_fields).map(([k, v]) => [k, typeof v === 'string' ? render(compile(v), values) : v]));
          if (step.add_tags || step.remove_tags) {
            const row = await this.contacts.getRow(workflowPrincipal(run), run.contact_id);
            const tags = new Set(JSON.parse(row.tags) as string[]);
            for (const t of step.add_tags ?? []) tags.add(t);
            for (const t of step.remove_tags ?? []) tags.delete(t);
            patch.tags = [...tags];
          }
          // Setting the same values again is harmless: a retried step changes nothing more.
          await this.contacts.update(workflowPrincipal(run), run.contact_id, patch);
        } catch (err) {
          if (!(err instanceof AppError)) throw err;
          return tx((t) => this.fail(t, run, def, step, err.message, now, {}, hold));
        }
        return tx((t) => this.finishStep(t, run, { status: 'completed', result: { updated: Object.keys(patch) }, goto: following(def, step), hold }, now));
      }
      case 'stop':
        return tx(async (t) => {
          await this.closeStepRow(t, run, 'completed', undefined, null, now);
          return this.finalize(t, run, step.status, null, now, false);
        });
    }
  }

  /** A step that cannot go on: its on_failure goto when it has one, else the run fails. */
  private async fail(t: WorkflowTx, run: RunRow, def: Definition, step: Step, message: string, now: number, extra: Record<string, unknown> = {}, hold?: number): Promise<RunRow | null> {
    const onFailure = 'on_failure' in step ? step.on_failure : undefined;
    const result = { error: message, ...extra };
    if (onFailure) return this.finishStep(t, run, { status: 'failed', result, goto: onFailure, hold }, now);
    const ctx = JSON.parse(run.context) as RunContext;
    ctx.steps[step.id] = result;
    await this.closeStepRow(t, run, 'failed', result, null, now);
    return this.finalize(t, { ...run, context: JSON.stringify(ctx) }, 'failed', `${step.id}: ${message}`, now, false);
  }

  private waitUntil(run: RunRow, step: Extract<Step, { type: 'wait' }>, now: number): number | string {
    if (step.duration) return now + parseDuration(step.duration)!;
    const ctx = JSON.parse(run.context) as RunContext;
    let value: unknown;
    try {
      value = compileExpression(step.until!)({ data: ctx.data, steps: ctx.steps, event: ctx.event, contact: {} });
    } catch (err) {
      return `until could not be evaluated: ${(err as Error).message.split('\n')[0]}`;
    }
    const at = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : typeof value === 'number' || typeof value === 'bigint' ? Number(value) : NaN;
    if (!Number.isFinite(at)) return `until gave ${JSON.stringify(plainValue(value))}, which is not a time (an ISO 8601 text, a timestamp or milliseconds since 1970).`;
    return at + (step.offset ? parseDuration(step.offset)! : 0);
  }

  private async contactRow(run: RunRow) {
    return this.db.selectFrom('contacts').selectAll().where('id', '=', run.contact_id).executeTakeFirstOrThrow();
  }

  private async expressionContext(run: RunRow): Promise<Record<string, unknown>> {
    const ctx = JSON.parse(run.context) as RunContext;
    const c = await this.contactRow(run);
    return { data: ctx.data, steps: ctx.steps, event: ctx.event, contact: { id: c.id, tags: JSON.parse(c.tags), ...contactVariables(c) } };
  }

  /** What Liquid texts see: data, contact, steps, event, and the contact's fields at the top level. */
  private async templateValues(run: RunRow): Promise<Record<string, unknown>> {
    const env = await this.expressionContext(run);
    return { ...(env.contact as Record<string, unknown>), ...env };
  }

  private async send(run: RunRow, def: Definition, step: Extract<Step, { type: 'send' }>, now: number): Promise<RunRow | null> {
    const tx = <T>(fn: (t: WorkflowTx) => Promise<T>) => this.tx(fn);
    const hold = now + this.opts.leaseMs;
    const values = await this.templateValues(run);
    const contact = values.contact as { phone: string };
    const metadata = { workflow_id: run.workflow_id, workflow_run_id: run.id, workflow_step: step.id };
    let messageId: string;
    let status: string;
    try {
      const input: Record<string, unknown> = { to: contact.phone, channel: step.channel, purpose: step.purpose, metadata };
      if (step.from) input.from = step.from;
      if (step.body !== undefined) input.body = render(compile(step.body), values);
      if (step.template_id) input.template = { id: step.template_id, variables: values };
      if (step.media_urls) input.media_urls = step.media_urls.map((u) => render(compile(u), values));
      // Derived from the run and the step row: a retry after a crash replays the same message.
      const prepared = await this.messages.prepare(workflowPrincipal(run), input, `workflow:${run.id}:${run.step_index}`);
      const [res] = await this.messages.commit([prepared]);
      if (!res.ok) throw res.error;
      messageId = res.message.id;
      status = res.message.status;
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.code === 'OPTED_OUT') {
        // The contact withdrew consent: nothing more goes to them from this run.
        return tx(async (t) => {
          await this.closeStepRow(t, run, 'skipped', { error: err.message, code: err.code }, null, now);
          return this.finalize(t, run, 'canceled', 'The contact opted out.', now, false);
        });
      }
      return tx((t) => this.fail(t, run, def, step, err.message, now, { code: err.code }, hold));
    }
    return tx((t) => this.finishStep(t, run, { status: 'completed', result: { message_id: messageId, status }, messageId, goto: following(def, step), hold }, now));
  }

  private async waitFor(run: RunRow, def: Definition, step: WaitForStep, now: number): Promise<RunRow | null> {
    const ctx = JSON.parse(run.context) as RunContext;
    const conditions: StoredCondition[] = step.on.map((c) => (c.kind === 'event' && c.correlate ? { ...c, value: ctx.data[c.correlate] ?? null } : c));
    const due = now + parseDuration(step.timeout)!;
    const waiting = await this.tx((t) => this.enterWait(t, run, { due, wait: conditions }, now));
    // A delivery outcome that is already known resolves the wait at once. Checked after the wait
    // is committed, so a receipt landing in between is seen by one side or the other.
    for (const c of conditions) {
      if (c.kind !== 'delivery') continue;
      const id = (ctx.steps[c.step] as { message_id?: string } | undefined)?.message_id;
      if (!id) continue;
      const m = await this.db.selectFrom('messages').select('status').where('id', '=', id).executeTakeFirst();
      if (m && c.outcomes.includes(m.status)) {
        // Not held: the run is no longer leased (it was waiting), whoever claims it goes on.
        return this.tx((t) => this.finishStep(t, waiting, { status: 'completed', result: { matched: 'delivery', message_id: id, outcome: m.status }, goto: c.goto ?? following(def, step) }, this.clock.now())).then(() => null);
      }
    }
    return null;
  }

  private async webhook(run: RunRow, def: Definition, step: Extract<Step, { type: 'webhook' }>, now: number): Promise<RunRow | null> {
    const tx = <T>(fn: (t: WorkflowTx) => Promise<T>) => this.tx(fn);
    const hold = this.clock.now() + this.opts.leaseMs;
    const env = await this.expressionContext(run);
    const c = env.contact as { id: string; phone: string; name?: string };
    const payload = JSON.stringify({
      type: 'workflow.step',
      timestamp: new Date(now).toISOString(),
      data: { run_id: run.id, workflow_id: run.workflow_id, version: run.version, step_id: step.id, contact: { id: c.id, phone: c.phone, name: c.name ?? null }, event: env.event, data: env.data, steps: env.steps },
    });
    const attempts = run.attempts + 1;
    let statusCode: number | null = null;
    let response: unknown;
    let error: string | null = null;
    try {
      const secrets = activeSecrets(await this.webhooks.callbackSecrets(run.account_id, run.mode), now);
      // Wall-clock time in the signature: receivers compare it with their own clock.
      const headers = { 'content-type': 'application/json', 'user-agent': 'Switchboard-Workflows/1', ...signedHeaders(`${run.id}_${run.step_index}`, new Date(), payload, secrets) };
      const r = await guardedFetch(step.url, { method: 'POST', headers, body: payload }, { allowPrivate: this.opts.allowPrivateUrls, resolver: this.opts.resolver, timeoutMs: WEBHOOK_TIMEOUT_MS, maxBytes: 64 * 1024 });
      statusCode = r.status;
      if ((r.headers.get('content-type') ?? '').includes('json') && r.body.length <= 16 * 1024) {
        try {
          response = JSON.parse(r.body.toString('utf8'));
        } catch {
          response = undefined;
        }
      }
      if (r.status < 200 || r.status > 299) error = `The receiver answered ${r.status}.`;
    } catch (err) {
      error = (err as Error).message;
    }
    if (error === null) {
      return tx((t) => this.finishStep(t, run, { status: 'completed', result: { status_code: statusCode, attempts, ...(response !== undefined && { response }) }, goto: following(def, step), hold }, now));
    }
    if (attempts > step.retries) {
      return tx((t) => this.fail(t, run, def, step, `${error} (after ${attempts} attempts)`, now, { status_code: statusCode, attempts }, hold));
    }
    const delay = Math.min(MAX_BACKOFF_MS, parseDuration(step.backoff)! * 2 ** (attempts - 1));
    await tx(async (t) => {
      const res = await t
        .updateTable('workflow_runs')
        .set({ attempts, due_at: now + delay, claim_seq: run.claim_seq + 1, updated_at: now })
        .where('id', '=', run.id)
        .where('claim_seq', '=', run.claim_seq)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new Busy();
      await t.updateTable('workflow_steps').set({ result: JSON.stringify({ attempts, status_code: statusCode, error }) }).where('run_id', '=', run.id).where('idx', '=', run.step_index).execute();
    });
    return null;
  }

  // ---- signals: the world's events, resuming waiting runs ----

  private async applySignals(): Promise<number> {
    const signals = await this.db.selectFrom('workflow_signals').selectAll().orderBy('id').limit(200).execute();
    let n = 0;
    for (const s of signals) {
      try {
        const finished = await transaction(this.storage.db, async (raw) => {
          const t = raw as unknown as WorkflowTx;
          const del = await t.deleteFrom('workflow_signals').where('id', '=', s.id).executeTakeFirst();
          if (Number(del.numDeletedRows) !== 1) return false;
          return this.applySignal(t, s);
        });
        n++;
        if (finished) for (const fn of this.finishedListeners) fn();
      } catch (err) {
        // A run changed under us (Busy): the signal stays and is applied next round.
        if (!(err instanceof Busy)) this.log.error({ err, signal: s.id }, 'workflow signal failed');
      }
    }
    return n;
  }

  private async applySignal(t: WorkflowTx, s: { outbox_id: number; account_id: string; mode: string; type: string; message_id: string | null }): Promise<boolean> {
    const now = this.clock.now();
    if (s.type === 'contact.opted_out') {
      const row = await t.selectFrom('outbox').select('payload').where('id', '=', s.outbox_id).executeTakeFirst();
      const phone = row ? (JSON.parse(row.payload) as { data?: { phone?: string } }).data?.phone : undefined;
      if (!phone) return false;
      const contact = await this.contacts.byPhone(t as never, s.account_id, s.mode, phone);
      if (!contact) return false;
      return this.cancelRunsOf(t, contact.id, 'The contact opted out.', now);
    }
    if (!s.message_id) return false;
    if (s.type === 'message.received') {
      const m = await t.selectFrom('messages').select(['from_addr', 'body']).where('id', '=', s.message_id).executeTakeFirst();
      if (!m?.from_addr) return false;
      const keyword = keywordOf(m.body ?? '');
      // Consent keywords are the consent service's business (a STOP cancels runs by itself).
      if (OPT_OUT_KEYWORDS.includes(keyword) || OPT_IN_KEYWORDS.includes(keyword)) return false;
      const firstWord = (m.body ?? '').trim().split(/\s+/)[0]?.toUpperCase() ?? '';
      const contact = await this.contacts.byPhone(t as never, s.account_id, s.mode, m.from_addr);
      if (!contact) return false;
      const runs = await t.selectFrom('workflow_runs').selectAll().where('contact_id', '=', contact.id).where('status', '=', 'waiting').where('wait_reply', '=', 1).execute();
      let any = false;
      for (const run of runs) {
        const conds = JSON.parse(run.wait ?? '[]') as StoredCondition[];
        const c = conds.find((x) => x.kind === 'reply' && (x.keywords === null || x.keywords.includes(keyword) || x.keywords.includes(firstWord)));
        if (!c || c.kind !== 'reply') continue;
        const matchedKeyword = c.keywords === null ? null : c.keywords.includes(keyword) ? keyword : firstWord;
        any = (await this.resume(t, run, c, { matched: 'reply', message_id: s.message_id, body: m.body, keyword: matchedKeyword }, now)) || any;
      }
      return any;
    }
    const outcome = s.type.slice('message.'.length);
    const steps = await t.selectFrom('workflow_steps').select(['run_id', 'step_id']).where('message_id', '=', s.message_id).execute();
    let any = false;
    for (const st of steps) {
      const run = await t.selectFrom('workflow_runs').selectAll().where('id', '=', st.run_id).where('status', '=', 'waiting').executeTakeFirst();
      if (!run) continue;
      const conds = JSON.parse(run.wait ?? '[]') as StoredCondition[];
      const c = conds.find((x) => x.kind === 'delivery' && x.step === st.step_id && x.outcomes.includes(outcome));
      if (!c) continue;
      any = (await this.resume(t, run, c, { matched: 'delivery', message_id: s.message_id, outcome }, now)) || any;
    }
    return any;
  }

  /** A waiting run whose condition `c` happened: its wait_for step completes and it goes on. */
  private async resume(t: WorkflowTx, run: RunRow, c: Condition, result: Record<string, unknown>, now: number): Promise<boolean> {
    const def = await this.definition(t, run.workflow_id, run.version);
    const step = def.steps.find((s) => s.id === run.current_step);
    if (!step) return false;
    const goto = c.goto ?? following(def, step);
    // A matched reply is named by the step (its text is in `result`): a redaction of the reply
    // finds and erases that copy through it (workflow-redaction.ts).
    const messageId = result.matched === 'reply' && typeof result.message_id === 'string' ? result.message_id : null;
    await this.finishStep(t, run, { status: 'completed', result, goto, messageId }, now);
    return goto === END;
  }

  /** In the event's transaction: runs of this contact waiting for this event (and its correlation value). */
  async resumeOnEvent(t: WorkflowTx, contactId: string, event: { id: string; name: string; data: Record<string, unknown> }, now: number): Promise<string[]> {
    const runs = await t
      .selectFrom('workflow_runs')
      .selectAll()
      .where('contact_id', '=', contactId)
      .where('status', '=', 'waiting')
      .where('wait_event', 'like', `%|${event.name}|%`)
      .execute();
    const resumed: string[] = [];
    for (const run of runs) {
      const conds = JSON.parse(run.wait ?? '[]') as StoredCondition[];
      const c = conds.find((x) => x.kind === 'event' && x.event === event.name && (x.correlate === null || String(event.data[x.correlate] ?? '') === String(x.value ?? '')));
      if (!c) continue;
      await this.resume(t, run, c, { matched: 'event', event_id: event.id, name: event.name, data: event.data }, now);
      resumed.push(run.id);
    }
    return resumed;
  }

  /** Every active run of the contact ends canceled (an opt-out). */
  async cancelRunsOf(t: WorkflowTx, contactId: string, reason: string, now: number): Promise<boolean> {
    const runs = await t.selectFrom('workflow_runs').selectAll().where('contact_id', '=', contactId).where('status', 'in', ['running', 'waiting']).execute();
    for (const run of runs) await this.finalize(t, run, 'canceled', reason, now);
    return false;
  }
}
