// The workflow engine's public surface (issue #8): the service behind /v1/events, /v1/workflows
// and /v1/runs, and the engine worker. Wired by platform.ts.
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import type { ContactService } from '../contacts/contact-service.ts';
import type { MessageService } from '../messages/message-service.ts';
import type { Resolver } from '../net/guarded-fetch.ts';
import type { Storage } from '../storage/database.ts';
import type { Webhooks } from '../webhooks/webhooks.ts';
import { WorkflowEngine } from './workflow-engine.ts';
import { WorkflowService } from './workflow-service.ts';
import { workflowSignalKind } from './workflow-signals.ts';

export interface Workflows {
  service: WorkflowService;
  engine: WorkflowEngine;
}

export function createWorkflows(deps: { storage: Storage; clock: Clock; log: Logger; messages: MessageService; contacts: ContactService; webhooks: Webhooks; workerId: string; pollMs: number; allowPrivateUrls: boolean; resolver?: Resolver }): Workflows {
  const engine = new WorkflowEngine(deps.storage, deps.clock, deps.messages, deps.contacts, deps.webhooks.service, deps.log, {
    workerId: deps.workerId,
    pollMs: deps.pollMs,
    leaseMs: 60_000,
    batch: 500,
    concurrency: 64,
    allowPrivateUrls: deps.allowPrivateUrls,
    resolver: deps.resolver,
  });
  deps.webhooks.worker.addTargetKind(workflowSignalKind(() => engine.wake()));
  engine.onFinished(() => deps.webhooks.worker.wake());
  return { service: new WorkflowService(deps.storage, deps.clock, deps.contacts, engine), engine };
}
