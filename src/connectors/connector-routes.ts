// /v1/connectors, /v1/routes and /v1/senders (CONTRACT §9), scope connectors:manage.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const Obj = Type.Record(Type.String(), Type.Unknown());
const Deleted = Type.Object({ id: Type.String(), deleted: Type.Boolean() });
const ConnectorView = Type.Object({
  id: Type.String(),
  object: Type.Literal('connector'),
  name: Type.String(),
  type: Type.String(),
  config: Obj,
  secrets_set: Type.Array(Type.String(), { description: 'Credential fields that are set; their values are never returned.' }),
  enabled: Type.Boolean(),
  global: Type.Boolean(),
  created_at: Type.String(),
  updated_at: Type.String(),
  state: Type.Optional(Obj),
});
const OneOrMany = (description: string) => Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())], { description }));
const RouteFilters = Type.Object(
  {
    country: OneOrMany('ISO 3166 alpha-2 codes of the destination.'),
    prefix: OneOrMany('Destination number prefixes, such as +1415.'),
    channel: OneOrMany('sms, mms, voice, rvm.'),
    purpose: OneOrMany('transactional, marketing.'),
    sender: OneOrMany("The message's from address: numbers (normalised to E.164), short codes, alphanumeric ids."),
  },
  { description: 'Every filter given must match; a list matches any of its values. No filters: every message.' },
);
const RouteView = Type.Object({
  id: Type.String(),
  object: Type.Literal('route'),
  name: Type.Union([Type.String(), Type.Null()]),
  priority: Type.Integer(),
  filters: RouteFilters,
  connector_id: Type.Union([Type.String(), Type.Null()]),
  strategy: Type.Union([Obj, Type.Null()]),
  global: Type.Boolean(),
  created_at: Type.String(),
});
const SenderView = Type.Object({
  id: Type.String(),
  object: Type.Literal('sender'),
  address: Type.String(),
  type: Type.String(),
  connector_id: Type.Union([Type.String(), Type.Null()]),
  capabilities: Type.Array(Type.String()),
  throughput: Type.Union([Type.Number(), Type.Null()]),
  default: Type.Boolean(),
  created_at: Type.String(),
});

const config = { scope: 'connectors:manage' as const };
const id = (req: { params: unknown }) => (req.params as { id: string }).id;

export function connectorRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/connectors',
    {
      config,
      schema: {
        tags: ['connectors'],
        summary: 'Add a connector; credentials in config are sealed and never returned',
        body: Type.Object({ name: Type.String(), type: Type.String(), config: Type.Optional(Obj), enabled: Type.Optional(Type.Boolean()) }),
        response: { 201: ConnectorView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => reply.status(201).send(await p.connectorAdmin.create(principalOf(req).accountId, req.body as Record<string, unknown>, principalOf(req))),
  );
  app.get('/v1/connectors', { config, schema: { tags: ['connectors'], summary: 'Connectors of the account and of the installation', response: { 200: Type.Object({ data: Type.Array(ConnectorView) }), ...errorResponses(401, 403) } } }, async (req) => ({
    data: await p.connectorAdmin.list(principalOf(req).accountId),
  }));
  app.get('/v1/connectors/:id', { config, schema: { tags: ['connectors'], summary: 'A connector with its live state', params: IdParams, response: { 200: ConnectorView, ...errorResponses(401, 403, 404) } } }, async (req) =>
    p.connectorAdmin.get(principalOf(req).accountId, id(req)),
  );
  app.patch(
    '/v1/connectors/:id',
    {
      config,
      schema: {
        tags: ['connectors'],
        summary: 'Change a connector (config merges; a field set to null is removed); its session restarts',
        params: IdParams,
        body: Type.Object({ name: Type.Optional(Type.String()), config: Type.Optional(Obj), enabled: Type.Optional(Type.Boolean()) }),
        response: { 200: ConnectorView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => p.connectorAdmin.update(principalOf(req).accountId, id(req), req.body as Record<string, unknown>, principalOf(req)),
  );
  app.delete('/v1/connectors/:id', { config, schema: { tags: ['connectors'], summary: 'Delete a connector no route or sender uses', params: IdParams, response: { 200: Deleted, ...errorResponses(400, 401, 403, 404) } } }, async (req) =>
    p.connectorAdmin.remove(principalOf(req).accountId, id(req), principalOf(req)),
  );

  app.post(
    '/v1/routes',
    {
      config,
      schema: {
        tags: ['routing'],
        summary: 'Add a route: filters to a connector, or to a failover / round-robin strategy; the lowest matching priority wins',
        body: Type.Object({
          priority: Type.Integer(),
          name: Type.Optional(Type.String()),
          filters: Type.Optional(RouteFilters),
          connector_id: Type.Optional(Type.String()),
          strategy: Type.Optional(Type.Object({ type: Type.String({ enum: ['failover', 'round_robin'] }), connector_ids: Type.Array(Type.String()) })),
        }),
        response: { 201: RouteView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => reply.status(201).send(await p.routeAdmin.create(principalOf(req).accountId, req.body as Record<string, unknown>, principalOf(req))),
  );
  app.get('/v1/routes', { config, schema: { tags: ['routing'], summary: 'The route table, in the order it is read', response: { 200: Type.Object({ data: Type.Array(RouteView) }), ...errorResponses(401, 403) } } }, async (req) => ({
    data: await p.routeAdmin.list(principalOf(req).accountId),
  }));
  app.delete('/v1/routes/:id', { config, schema: { tags: ['routing'], summary: 'Delete a route', params: IdParams, response: { 200: Deleted, ...errorResponses(401, 403, 404) } } }, async (req) =>
    p.routeAdmin.remove(principalOf(req).accountId, id(req), principalOf(req)),
  );

  app.post(
    '/v1/senders',
    {
      config,
      schema: {
        tags: ['senders'],
        summary: 'Register a sender: a number, short code or alphanumeric id',
        body: Type.Object({
          address: Type.String(),
          type: Type.Optional(Type.String({ enum: ['long_code', 'toll_free', 'short_code', 'alphanumeric'] })),
          connector_id: Type.Optional(Type.String()),
          capabilities: Type.Optional(Type.Array(Type.String())),
          throughput: Type.Optional(Type.Number()),
        }),
        response: { 201: SenderView, ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req, reply) => reply.status(201).send(await p.senderAdmin.create(principalOf(req).accountId, req.body as Record<string, unknown>, principalOf(req))),
  );
  app.get('/v1/senders', { config, schema: { tags: ['senders'], summary: 'Senders of the account', response: { 200: Type.Object({ data: Type.Array(SenderView) }), ...errorResponses(401, 403) } } }, async (req) => ({
    data: await p.senderAdmin.list(principalOf(req).accountId),
  }));
  app.delete('/v1/senders/:id', { config, schema: { tags: ['senders'], summary: 'Remove a sender', params: IdParams, response: { 200: Deleted, ...errorResponses(401, 403, 404) } } }, async (req) =>
    p.senderAdmin.remove(principalOf(req).accountId, id(req), principalOf(req)),
  );
}
