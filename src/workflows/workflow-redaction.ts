// What a message's redaction (retention, the Twilio API's Body="" and DELETE: see
// security/retention.ts redactMessages) must also erase in the workflow engine: a wait_for step
// that matched a reply keeps the reply's text in its result, and the run's context keeps the
// same copy for later steps' templates. Both rows name the reply by the step's message_id.
import type { Tx } from '../storage/database.ts';
import type { WorkflowTx } from './workflow-tables.ts';
import type { RunContext } from './workflow-engine.ts';

function withoutBody(value: unknown): Record<string, unknown> | null {
  if (!value || typeof value !== 'object' || !('body' in value)) return null;
  const { body: _body, ...rest } = value as Record<string, unknown>;
  return { ...rest, body_redacted: true };
}

export async function redactWorkflowCopies(anyTx: Tx, messageIds: string[]): Promise<void> {
  const tx = anyTx as unknown as WorkflowTx;
  for (let i = 0; i < messageIds.length; i += 500) {
    const steps = await tx.selectFrom('workflow_steps').select(['run_id', 'idx', 'step_id', 'result']).where('message_id', 'in', messageIds.slice(i, i + 500)).execute();
    for (const s of steps) {
      const result = withoutBody(s.result ? JSON.parse(s.result) : null);
      if (result) await tx.updateTable('workflow_steps').set({ result: JSON.stringify(result) }).where('run_id', '=', s.run_id).where('idx', '=', s.idx).execute();
      const run = await tx.selectFrom('workflow_runs').select('context').where('id', '=', s.run_id).executeTakeFirst();
      if (!run) continue;
      const ctx = JSON.parse(run.context) as RunContext;
      const copy = withoutBody(ctx.steps?.[s.step_id]);
      if (!copy) continue;
      ctx.steps[s.step_id] = copy;
      await tx.updateTable('workflow_runs').set({ context: JSON.stringify(ctx) }).where('id', '=', s.run_id).execute();
    }
  }
}
