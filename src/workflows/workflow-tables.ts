// Row types of the workflow tables (migration 011), kept beside the code that owns them;
// `workflowDb` widens the platform's Kysely instance with them.
import type { Generated, Kysely, Transaction } from 'kysely';
import type { Storage } from '../storage/database.ts';
import type { DB } from '../storage/schema.ts';

export interface WorkflowsTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  trigger_event: string;
  enabled: number;
  version: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface WorkflowVersionsTable {
  workflow_id: string;
  version: number;
  /** The validated definition, JSON (sealed: it holds message texts). */
  definition: string;
  created_at: number;
}

export interface WorkflowEventsTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  contact_id: string;
  idempotency_key: string | null;
  data: string;
  /** JSON array of the run ids the event started: the idempotent answer. */
  runs: string;
  created_at: number;
}

export type RunStatus = 'running' | 'waiting' | 'completed' | 'failed' | 'canceled';

export interface WorkflowRunsTable {
  id: string;
  account_id: string;
  mode: string;
  workflow_id: string;
  version: number;
  contact_id: string;
  event_id: string;
  status: RunStatus;
  /** The step the run is at; null once finished. */
  current_step: string | null;
  /** The workflow_steps row (idx) of the current step. */
  step_index: number;
  /** The claim token: every change of the run's state is an UPDATE … WHERE claim_seq = the value read, +1. */
  claim_seq: number;
  /** When the engine must look at the run next (a timer, a retry, a lease); null: only a signal moves it. */
  due_at: number | null;
  /** JSON: what a waiting run waits for (wait-conditions with their correlation values). */
  wait: string | null;
  wait_event: string | null;
  wait_reply: number;
  /** Attempts of the current step (webhook retries). */
  attempts: number;
  /** JSON (sealed): {data, event, steps}: what expressions and templates see. */
  context: string;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface WorkflowStepsTable {
  run_id: string;
  idx: number;
  step_id: string;
  type: string;
  status: string;
  started_at: number;
  finished_at: number | null;
  message_id: string | null;
  /** JSON (sealed: a reply's text lands here). */
  result: string | null;
}

export interface WorkflowSignalsTable {
  id: Generated<number>;
  outbox_id: number;
  account_id: string;
  mode: string;
  type: string;
  message_id: string | null;
  created_at: number;
}

export interface WorkflowDB extends DB {
  workflows: WorkflowsTable;
  workflow_versions: WorkflowVersionsTable;
  workflow_events: WorkflowEventsTable;
  workflow_runs: WorkflowRunsTable;
  workflow_steps: WorkflowStepsTable;
  workflow_signals: WorkflowSignalsTable;
}

export type WorkflowTx = Transaction<WorkflowDB>;
export type WorkflowExecutor = Kysely<WorkflowDB> | WorkflowTx;

export function workflowDb(storage: Storage): Kysely<WorkflowDB> {
  return storage.db as unknown as Kysely<WorkflowDB>;
}
