// /v1/templates (CONTRACT §11): create, read, change (a new version), delete, preview.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

export const TemplateSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('template'),
  name: Type.String(),
  version: Type.Integer({ description: 'Starts at 1; every change of body or variables adds one.' }),
  body: Type.String({ description: 'Liquid text, e.g. "Hi {{ first_name }}, your code is {{ code }}".' }),
  variables: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const TemplateInput = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 100 })),
  body: Type.Optional(Type.String()),
  variables: Type.Optional(Type.Array(Type.String(), { maxItems: 100 })),
});

const PreviewSchema = Type.Object({
  body: Type.String(),
  encoding: Type.String({ enum: ['GSM-7', 'UCS-2'] }),
  segments: Type.Integer(),
  warnings: Type.Array(Type.String()),
});

export function templateRoutes(app: FastifyInstance, p: Platform): void {
  const tags = ['templates'];
  app.post(
    '/v1/templates',
    {
      config: { scope: 'campaigns:send' },
      schema: { tags, summary: 'Create a template (version 1); the body may use only declared variables', body: TemplateInput, response: { 201: TemplateSchema, ...errorResponses(400, 401, 403) } },
    },
    async (req, reply) => reply.status(201).send(await p.templates.create(principalOf(req), req.body)),
  );
  app.get(
    '/v1/templates',
    { config: { scope: 'messages:read' }, schema: { tags, summary: 'List templates at their current version', response: { 200: Type.Object({ data: Type.Array(TemplateSchema) }), ...errorResponses(401, 403) } } },
    async (req) => p.templates.list(principalOf(req)),
  );
  app.get(
    '/v1/templates/:id',
    {
      config: { scope: 'messages:read' },
      schema: { tags, summary: 'Fetch a template; ?version=N for an earlier version', params: IdParams, querystring: Type.Object({ version: Type.Optional(Type.Integer({ minimum: 1 })) }), response: { 200: TemplateSchema, ...errorResponses(401, 403, 404) } },
    },
    async (req) => p.templates.get(principalOf(req), (req.params as { id: string }).id, (req.query as { version?: number }).version),
  );
  app.patch(
    '/v1/templates/:id',
    {
      config: { scope: 'campaigns:send' },
      schema: { tags, summary: 'Change a template: a new body or variables make a new version', params: IdParams, body: TemplateInput, response: { 200: TemplateSchema, ...errorResponses(400, 401, 403, 404) } },
    },
    async (req) => p.templates.update(principalOf(req), (req.params as { id: string }).id, req.body),
  );
  app.delete(
    '/v1/templates/:id',
    {
      config: { scope: 'campaigns:send' },
      schema: { tags, summary: 'Delete a template (sent messages keep their text)', params: IdParams, response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }), ...errorResponses(401, 403, 404) } },
    },
    async (req) => p.templates.remove(principalOf(req), (req.params as { id: string }).id),
  );
  app.post(
    '/v1/templates/:id/preview',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags,
        summary: 'Render with sample values: the text, its encoding and segments, and warnings (a value that turns GSM-7 into UCS-2)',
        params: IdParams,
        body: Type.Object({ variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())) }),
        response: { 200: PreviewSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => p.templates.preview(principalOf(req), (req.params as { id: string }).id, req.body),
  );
}
