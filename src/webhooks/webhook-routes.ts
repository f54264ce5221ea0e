// /v1/webhooks (CONTRACT §7): endpoints, their secrets, the delivery log, retry and replay.
// Every route needs the webhooks:manage scope and sees only the caller's account and mode.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { EVENT_TYPES } from '../events/outbox.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const config = { scope: 'webhooks:manage' as const };
const tags = ['webhooks'];

const Endpoint = Type.Object({
  id: Type.String(),
  object: Type.Literal('webhook_endpoint'),
  url: Type.String(),
  description: Nullable(Type.String()),
  events: Type.Array(Type.String()),
  mode: Type.String({ enum: ['test', 'live'] }),
  enabled: Type.Boolean(),
  include_body: Type.Boolean({ description: 'false: message bodies and media are left out of this endpoint’s payloads ("body": null, "body_redacted": true).' }),
  disabled_reason: Nullable(Type.String()),
  previous_secret_expires_at: Nullable(Type.String({ format: 'date-time' })),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
  secret: Type.Optional(Type.String({ description: 'whsec_…: only in the answers of create and rotate-secret.' })),
});

const Attempt = Type.Object({
  attempt: Type.Integer(),
  request_id: Type.String(),
  at: Type.String({ format: 'date-time' }),
  url: Type.String(),
  response_status: Nullable(Type.Integer()),
  latency_ms: Type.Integer(),
  response_body: Nullable(Type.String({ description: 'The first 1 KB of the answer.' })),
  error: Nullable(Type.String()),
});

const Delivery = Type.Object({
  id: Type.String({ description: 'Also the webhook-id header: the same for every attempt.' }),
  object: Type.Literal('webhook_delivery'),
  endpoint_id: Nullable(Type.String({ description: 'null for a message’s status_callback' })),
  url: Type.String(),
  event_id: Type.Integer(),
  event_type: Type.String(),
  message_id: Nullable(Type.String()),
  status: Type.String({ enum: ['pending', 'delivered', 'failed'] }),
  attempt_count: Type.Integer(),
  next_attempt_at: Nullable(Type.String({ format: 'date-time' })),
  last_status_code: Nullable(Type.Integer()),
  last_error: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  delivered_at: Nullable(Type.String({ format: 'date-time' })),
  attempts: Type.Array(Attempt),
});

const EventsField = Type.Array(Type.String(), {
  maxItems: EVENT_TYPES.length,
  description: `Event types to receive; empty or absent for all. One of: ${EVENT_TYPES.join(', ')}.`,
});
const EndpointCreate = Type.Object({
  url: Type.String({ description: 'http(s) URL, no credentials, at most 2048 characters.' }),
  events: Type.Optional(EventsField),
  description: Type.Optional(Type.String()),
  enabled: Type.Optional(Type.Boolean()),
  include_body: Type.Optional(Type.Boolean({ description: 'Default true. false leaves message bodies and media out of the payloads (minimum necessary).' })),
});
const EndpointPatch = Type.Object({
  url: Type.Optional(Type.String()),
  events: Type.Optional(EventsField),
  description: Type.Optional(Nullable(Type.String())),
  enabled: Type.Optional(Type.Boolean({ description: 'true re-enables an endpoint disabled by a 410; what waited goes now.' })),
  include_body: Type.Optional(Type.Boolean()),
});
const Overlap = Type.Optional(
  Type.Object({ overlap_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 7 * 86400, description: 'How long the old secret keeps signing too (default 86400).' })) }),
);
const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String({ maxLength: 100 })) });
const DeliveryQuery = Type.Object({
  status: Type.Optional(Type.String({ enum: ['pending', 'delivered', 'failed'] })),
  message_id: Type.Optional(Type.String({ maxLength: 100 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
  cursor: Type.Optional(Type.String({ maxLength: 100 })),
});
const CallbackSecret = Type.Object({
  object: Type.Literal('webhook_callback_secret'),
  mode: Type.String(),
  secret: Type.String(),
  previous_secret_expires_at: Nullable(Type.String({ format: 'date-time' })),
  updated_at: Type.String({ format: 'date-time' }),
});

export function webhookRoutes(app: FastifyInstance, p: Platform): void {
  const w = p.webhooks.service;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  app.post(
    '/v1/webhooks',
    {
      config,
      schema: { tags, summary: 'Create a webhook endpoint; the answer shows its signing secret, once', body: EndpointCreate, response: { 201: Endpoint, ...errorResponses(400, 401, 403) } },
    },
    async (req, reply) => reply.status(201).send(await w.create(principalOf(req), req.body as Record<string, unknown>)),
  );

  app.get(
    '/v1/webhooks',
    { config, schema: { tags, summary: 'List webhook endpoints, newest first', querystring: Page, response: { 200: Type.Object({ data: Type.Array(Endpoint), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403) } } },
    async (req) => w.list(principalOf(req), req.query as { limit?: number; cursor?: string }),
  );

  // Static paths are registered before /v1/webhooks/:id; the router prefers them anyway.
  app.get(
    '/v1/webhooks/deliveries',
    {
      config,
      schema: { tags, summary: 'Every delivery of the account (endpoints and status callbacks), newest first', querystring: DeliveryQuery, response: { 200: Type.Object({ data: Type.Array(Delivery), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403) } },
    },
    async (req) => w.deliveries(principalOf(req), null, req.query as Record<string, never>),
  );

  app.post(
    '/v1/webhooks/deliveries/:id/retry',
    { config, schema: { tags, summary: 'Send one delivery again now, with a fresh retry window', params: IdParams, response: { 200: Delivery, ...errorResponses(400, 401, 403, 404) } } },
    async (req) => w.retryDelivery(principalOf(req), id(req)),
  );

  app.get(
    '/v1/webhooks/callback-secret',
    { config, schema: { tags, summary: 'The secret that signs status_callback requests of this account and mode', response: { 200: CallbackSecret, ...errorResponses(401, 403) } } },
    async (req) => w.callbackSecretView(principalOf(req)),
  );

  app.post(
    '/v1/webhooks/callback-secret/rotate',
    { config, schema: { tags, summary: 'Rotate the status_callback secret; the old one keeps signing during the overlap', body: Overlap, response: { 200: CallbackSecret, ...errorResponses(400, 401, 403) } } },
    async (req) => w.rotateCallbackSecret(principalOf(req), (req.body ?? {}) as Record<string, unknown>),
  );

  app.get(
    '/v1/webhooks/:id',
    { config, schema: { tags, summary: 'Fetch a webhook endpoint (without its secret)', params: IdParams, response: { 200: Endpoint, ...errorResponses(401, 403, 404) } } },
    async (req) => w.get(principalOf(req), id(req)),
  );

  app.patch(
    '/v1/webhooks/:id',
    { config, schema: { tags, summary: 'Change a webhook endpoint: url, events, description, enabled', params: IdParams, body: EndpointPatch, response: { 200: Endpoint, ...errorResponses(400, 401, 403, 404) } } },
    async (req) => w.update(principalOf(req), id(req), req.body as Record<string, unknown>),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Delete a webhook endpoint and its delivery log; what was pending for it is dropped',
        params: IdParams,
        response: { 200: Type.Object({ id: Type.String(), object: Type.Literal('webhook_endpoint'), deleted: Type.Boolean() }), ...errorResponses(401, 403, 404) },
      },
    },
    async (req) => w.remove(principalOf(req), id(req)),
  );

  app.post(
    '/v1/webhooks/:id/rotate-secret',
    { config, schema: { tags, summary: 'New signing secret, shown once; the old one keeps signing during the overlap', params: IdParams, body: Overlap, response: { 200: Endpoint, ...errorResponses(400, 401, 403, 404) } } },
    async (req) => w.rotateSecret(principalOf(req), id(req), (req.body ?? {}) as Record<string, unknown>),
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      config,
      schema: { tags, summary: 'The delivery log of an endpoint, newest first, each with its attempts', params: IdParams, querystring: DeliveryQuery, response: { 200: Type.Object({ data: Type.Array(Delivery), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403, 404) } },
    },
    async (req) => w.deliveries(principalOf(req), id(req), req.query as Record<string, never>),
  );

  app.post(
    '/v1/webhooks/:id/replay',
    {
      config,
      schema: {
        tags,
        summary: 'Replay the deliveries of a time range: the failed ones (default) or all of them',
        params: IdParams,
        body: Type.Object({
          since: Type.String({ description: 'ISO 8601, inclusive' }),
          until: Type.Optional(Type.String({ description: 'ISO 8601, exclusive; default now' })),
          status: Type.Optional(Type.String({ enum: ['failed', 'all'] })),
        }),
        response: { 200: Type.Object({ endpoint_id: Type.String(), replayed: Type.Integer(), since: Type.String(), until: Type.String() }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => w.replay(principalOf(req), id(req), req.body as Record<string, unknown>),
  );

  const InboundRoute = Type.Object({
    id: Type.String(),
    object: Type.Literal('inbound_route'),
    priority: Type.Integer(),
    match: Type.Object({ number: Type.Optional(Type.String()), keyword: Type.Optional(Type.String()), owner: Type.Optional(Type.String()) }),
    endpoint_id: Type.String(),
    created_at: Type.String(),
  });
  const r = p.webhooks.inboundRoutes;

  app.post(
    '/v1/inbound-routes',
    {
      config,
      schema: {
        tags: ['inbox'],
        summary: 'Send inbound messages that match (the number they came to, their keyword, the contact’s owner) to one webhook endpoint',
        description: 'Rules are read lowest priority first; the first that matches sends the message.received event to its endpoint only. With no matching rule, every subscribed endpoint receives it.',
        body: Type.Object({
          priority: Type.Optional(Type.Integer()),
          match: Type.Object({ number: Type.Optional(Type.String()), keyword: Type.Optional(Type.String()), owner: Type.Optional(Type.String()) }),
          endpoint_id: Type.String(),
        }),
        response: { 201: InboundRoute, ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req, reply) => reply.status(201).send(await r.create(principalOf(req), req.body as Record<string, unknown>)),
  );
  app.get('/v1/inbound-routes', { config, schema: { tags: ['inbox'], summary: 'Inbound routing rules, in the order they are read', response: { 200: Type.Object({ data: Type.Array(InboundRoute) }), ...errorResponses(401, 403) } } }, async (req) => ({
    data: await r.list(principalOf(req)),
  }));
  app.delete(
    '/v1/inbound-routes/:id',
    { config, schema: { tags: ['inbox'], summary: 'Delete an inbound routing rule', params: IdParams, response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }), ...errorResponses(401, 403, 404) } } },
    async (req) => r.remove(principalOf(req), id(req)),
  );
}
