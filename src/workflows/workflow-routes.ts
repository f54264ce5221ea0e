// /v1/events, /v1/workflows and /v1/runs (CONTRACT §12). Definitions need workflows:manage;
// reading runs needs messages:read (viewers see runs, without reply texts); events need events:send.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const Open = Type.Record(Type.String(), Type.Unknown());

const WorkflowSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('workflow'),
  name: Type.String(),
  enabled: Type.Boolean(),
  version: Type.Integer(),
  trigger: Type.Object({ event: Type.String() }),
  steps: Type.Array(Open),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const WorkflowInput = Type.Object(
  {
    name: Type.Optional(Type.String({ maxLength: 200 })),
    trigger: Type.Optional(Type.Object({ event: Type.String() })),
    steps: Type.Optional(Type.Array(Open, { description: 'send, wait, wait_for, branch, webhook, update_contact, stop: see docs/workflows.md.' })),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);

const StepSchema = Type.Object({
  id: Type.String(),
  type: Type.String(),
  status: Type.String({ enum: ['running', 'waiting', 'completed', 'skipped', 'failed', 'timed_out', 'canceled'] }),
  started_at: Type.String({ format: 'date-time' }),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
  message_id: Type.Optional(Type.String()),
  result: Type.Optional(Open),
});

const RunSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('workflow_run'),
  status: Type.String({ enum: ['running', 'waiting', 'completed', 'failed', 'canceled'] }),
  workflow_id: Type.String(),
  version: Type.Integer(),
  contact_id: Type.String(),
  event_id: Type.String(),
  current_step: Nullable(Type.String()),
  error: Nullable(Type.String()),
  due_at: Nullable(Type.String({ format: 'date-time', description: 'When a waiting run times out or its wait ends.' })),
  steps: Type.Array(StepSchema),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
});

const EventInput = Type.Object(
  {
    name: Type.String({ maxLength: 100 }),
    contact: Type.Optional(Type.Object({ phone: Type.String() }, { additionalProperties: true })),
    contact_id: Type.Optional(Type.String({ maxLength: 100 })),
    data: Type.Optional(Open),
    idempotency_key: Type.Optional(Type.String({ maxLength: 255 })),
  },
  { additionalProperties: false },
);

const EventSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('event'),
  name: Type.String(),
  contact_id: Type.String(),
  runs: Type.Array(Type.String(), { description: 'The runs this event started.' }),
  resumed: Type.Array(Type.String(), { description: 'Waiting runs of the contact that this event moved on.' }),
  created_at: Type.String({ format: 'date-time' }),
});

const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String({ maxLength: 100 })) });

export function workflowRoutes(app: FastifyInstance, p: Platform): void {
  const tags = ['workflows'];
  const manage = { scope: 'workflows:manage' as const };
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;
  const w = p.workflows.service;

  app.post(
    '/v1/events',
    { config: { scope: 'events:send' }, schema: { tags, summary: 'Tell Switchboard something happened: starts and resumes workflow runs', body: EventInput, response: { 200: EventSchema, ...errorResponses(400, 401, 403, 404, 422) } } },
    async (req) => w.sendEvent(principalOf(req), req.body),
  );
  app.post(
    '/v1/workflows',
    { config: manage, schema: { tags, summary: 'Create a workflow (version 1)', body: WorkflowInput, response: { 201: WorkflowSchema, ...errorResponses(400, 401, 403) } } },
    async (req, reply) => reply.status(201).send(await w.create(principalOf(req), req.body)),
  );
  app.get(
    '/v1/workflows',
    { config: manage, schema: { tags, summary: 'Workflows, newest first', querystring: Page, response: { 200: Type.Object({ data: Type.Array(WorkflowSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(401, 403) } } },
    async (req) => w.list(principalOf(req), req.query as { limit?: number; cursor?: string }),
  );
  app.get(
    '/v1/workflows/:id',
    {
      config: manage,
      schema: { tags, summary: 'A workflow at its current version (or ?version=N)', params: IdParams, querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })) }), response: { 200: WorkflowSchema, ...errorResponses(401, 403, 404) } },
    },
    async (req) => w.get(principalOf(req), id(req), (req.query as { version?: number }).version),
  );
  app.put(
    '/v1/workflows/:id',
    { config: manage, schema: { tags, summary: 'Replace the definition: a new version', params: IdParams, body: WorkflowInput, response: { 200: WorkflowSchema, ...errorResponses(400, 401, 403, 404, 409) } } },
    async (req) => w.update(principalOf(req), id(req), req.body, false),
  );
  app.patch(
    '/v1/workflows/:id',
    { config: manage, schema: { tags, summary: 'Change some fields: a new version (enabled alone changes none)', params: IdParams, body: WorkflowInput, response: { 200: WorkflowSchema, ...errorResponses(400, 401, 403, 404, 409) } } },
    async (req) => w.update(principalOf(req), id(req), req.body, true),
  );
  app.delete(
    '/v1/workflows/:id',
    {
      config: manage,
      schema: { tags, summary: 'Delete: no new runs; runs under way finish', params: IdParams, response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('workflow'), deleted: Type.Boolean() }), ...errorResponses(401, 403, 404) } },
    },
    async (req) => w.remove(principalOf(req), id(req)),
  );
  app.get(
    '/v1/workflows/:id/runs',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags,
        summary: "A workflow's runs, newest first",
        params: IdParams,
        querystring: Type.Object({ ...Page.properties, status: Type.Optional(Type.String({ enum: ['running', 'waiting', 'completed', 'failed', 'canceled'] })) }),
        response: { 200: Type.Object({ data: Type.Array(RunSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => w.runs(principalOf(req), id(req), req.query as { limit?: number; cursor?: string; status?: string }),
  );
  app.get(
    '/v1/runs/:id',
    { config: { scope: 'messages:read' }, schema: { tags, summary: 'A run with its steps', params: IdParams, response: { 200: RunSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => w.run(principalOf(req), id(req)),
  );
}
