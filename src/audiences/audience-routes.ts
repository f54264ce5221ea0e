// /v1/lists and /v1/segments (CONTRACT §11): the audiences of campaigns.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { ContactSchema } from '../contacts/contact-routes.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const ListSchema = Type.Object({ id: Type.String(), object: Type.Literal('list'), name: Type.String(), contacts: Type.Integer(), created_at: Type.String({ format: 'date-time' }) });
const FilterSchema = Type.Object(
  {
    tags: Type.Optional(Type.Array(Type.String(), { description: 'The contact has all of these tags.' })),
    any_tags: Type.Optional(Type.Array(Type.String(), { description: 'The contact has at least one of these tags.' })),
    fields: Type.Optional(Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]), { description: 'Exact values of name, owner, time_zone or custom fields.' })),
    consent: Type.Optional(
      Type.Object({
        status: Type.String({ enum: ['opted_in', 'opted_out', 'none'] }),
        purpose: Type.Optional(Type.String({ enum: ['marketing', 'transactional', 'all'], default: 'marketing' })),
        channel: Type.Optional(Type.String({ default: 'sms' })),
      }),
    ),
  },
  { additionalProperties: true },
);
const SegmentSchema = Type.Object({ id: Type.String(), object: Type.Literal('segment'), name: Type.String(), filter: FilterSchema, created_at: Type.String({ format: 'date-time' }) });
const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), cursor: Type.Optional(Type.String()) });
const ContactPage = Type.Object({ data: Type.Array(ContactSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) });

export function audienceRoutes(app: FastifyInstance, p: Platform): void {
  const tags = ['audiences'];
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  app.post(
    '/v1/lists',
    { config: { scope: 'contacts:write' }, schema: { tags, summary: 'Create a static list of contacts', body: Type.Object({ name: Type.String() }), response: { 201: ListSchema, ...errorResponses(400, 401, 403) } } },
    async (req, reply) => reply.status(201).send(await p.audiences.createList(principalOf(req), req.body)),
  );
  app.get(
    '/v1/lists',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: 'Lists, newest first', response: { 200: Type.Object({ data: Type.Array(ListSchema) }), ...errorResponses(401, 403) } } },
    async (req) => p.audiences.lists(principalOf(req)),
  );
  app.get(
    '/v1/lists/:id',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: 'Fetch a list', params: IdParams, response: { 200: ListSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => p.audiences.getList(principalOf(req), id(req)),
  );
  app.post(
    '/v1/lists/:id/contacts',
    {
      config: { scope: 'contacts:write' },
      schema: {
        tags,
        summary: 'Add contacts to a list by id, or by phone (a contact is created for a new number)',
        params: IdParams,
        body: Type.Object({ contact_ids: Type.Optional(Type.Array(Type.String())), phones: Type.Optional(Type.Array(Type.String())) }),
        response: { 200: Type.Object({ added: Type.Integer(), list: ListSchema }), ...errorResponses(400, 401, 403, 404, 422) },
      },
    },
    async (req) => p.audiences.addToList(principalOf(req), id(req), req.body),
  );
  app.get(
    '/v1/lists/:id/contacts',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: "A list's contacts", params: IdParams, querystring: Page, response: { 200: ContactPage, ...errorResponses(400, 401, 403, 404) } } },
    async (req) => p.audiences.listContacts(principalOf(req), id(req), req.query as { limit?: number; cursor?: string }),
  );

  app.post(
    '/v1/segments',
    {
      config: { scope: 'contacts:write' },
      schema: { tags, summary: 'Save a segment: a filter over contact fields, tags and consent state', body: Type.Object({ name: Type.String(), filter: FilterSchema }), response: { 201: SegmentSchema, ...errorResponses(400, 401, 403) } },
    },
    async (req, reply) => reply.status(201).send(await p.audiences.createSegment(principalOf(req), req.body)),
  );
  app.get(
    '/v1/segments',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: 'Segments, newest first', response: { 200: Type.Object({ data: Type.Array(SegmentSchema) }), ...errorResponses(401, 403) } } },
    async (req) => p.audiences.segments(principalOf(req)),
  );
  app.get(
    '/v1/segments/:id',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: 'Fetch a segment', params: IdParams, response: { 200: SegmentSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => p.audiences.getSegment(principalOf(req), id(req)),
  );
  app.get(
    '/v1/segments/:id/contacts',
    { config: { scope: 'contacts:read' }, schema: { tags, summary: 'The contacts that match the segment now', params: IdParams, querystring: Page, response: { 200: ContactPage, ...errorResponses(400, 401, 403, 404) } } },
    async (req) => p.audiences.segmentContacts(principalOf(req), id(req), req.query as { limit?: number; cursor?: string }),
  );
}
