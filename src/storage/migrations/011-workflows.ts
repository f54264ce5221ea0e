// Migration 011: the workflow engine (src/workflows). Definitions with every version kept, the
// events that start and resume runs, runs (the run row is the job: its due_at is its timer),
// one row per step a run entered, and the signals the webhook fan-out hands the engine.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';
  await db.schema
    .createTable('workflows')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('trigger_event', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('deleted_at', ms)
    .execute();
  await db.schema.createIndex('workflows_trigger').on('workflows').columns(['account_id', 'mode', 'trigger_event']).execute();
  // A run names the version it started on and finishes on it: versions are never changed.
  await db.schema
    .createTable('workflow_versions')
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('definition', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('workflow_versions_pk', ['workflow_id', 'version'])
    .execute();
  await db.schema
    .createTable('workflow_events')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('idempotency_key', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('runs', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('workflow_events_key').unique().on('workflow_events').columns(['account_id', 'mode', 'idempotency_key']).execute();
  await db.schema
    .createTable('workflow_runs')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('workflow_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('event_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('current_step', 'text')
    .addColumn('step_index', 'integer', (c) => c.notNull())
    .addColumn('claim_seq', 'integer', (c) => c.notNull())
    .addColumn('due_at', ms)
    .addColumn('wait', 'text')
    .addColumn('wait_event', 'text')
    .addColumn('wait_reply', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('context', 'text', (c) => c.notNull())
    .addColumn('error', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('finished_at', ms)
    .execute();
  await db.schema.createIndex('workflow_runs_due').on('workflow_runs').columns(['due_at']).execute();
  await db.schema.createIndex('workflow_runs_workflow').on('workflow_runs').columns(['workflow_id', 'id']).execute();
  await db.schema.createIndex('workflow_runs_active').on('workflow_runs').columns(['account_id', 'status']).execute();
  await db.schema.createIndex('workflow_runs_contact').on('workflow_runs').columns(['contact_id', 'status']).execute();
  await db.schema
    .createTable('workflow_steps')
    .addColumn('run_id', 'text', (c) => c.notNull())
    .addColumn('idx', 'integer', (c) => c.notNull())
    .addColumn('step_id', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('started_at', ms, (c) => c.notNull())
    .addColumn('finished_at', ms)
    .addColumn('message_id', 'text')
    .addColumn('result', 'text')
    .addPrimaryKeyConstraint('workflow_steps_pk', ['run_id', 'idx'])
    .execute();
  await db.schema.createIndex('workflow_steps_message').on('workflow_steps').columns(['message_id']).execute();
  const signals = db.schema.createTable('workflow_signals');
  await (ctx.dialect === 'postgres' ? signals.addColumn('id', 'bigserial', (c) => c.primaryKey()) : signals.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()))
    .addColumn('outbox_id', ms, (c) => c.notNull().unique())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
}
