// /v1/messages (CONTRACT §4).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { recordBodyRead } from '../audit/audit-http.ts';
import { principalOf } from '../http/auth.ts';
import { errorBody } from '../http/errors.ts';
import { IdParams, MessageCreate, MessageSchema, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { validation } from '../errors.ts';

const ListQuery = Type.Object({
  status: Type.Optional(Type.String()),
  direction: Type.Optional(Type.String({ enum: ['inbound', 'outbound'] })),
  to: Type.Optional(Type.String()),
  from: Type.Optional(Type.String()),
  channel: Type.Optional(Type.String()),
  error_class: Type.Optional(Type.String({ description: 'Messages that failed with this error class (CONTRACT §5).' })),
  since: Type.Optional(Type.String()),
  until: Type.Optional(Type.String()),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
  cursor: Type.Optional(Type.String()),
});

export function messageRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/messages',
    {
      config: { scope: 'messages:send' },
      schema: {
        tags: ['messages'],
        summary: 'Send a message',
        description: 'Validates, normalises and checks consent and routing, commits, then answers 202. Header Idempotency-Key: the same key and body within 24 h returns the first message and sends nothing new.',
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
        body: MessageCreate,
        response: { 202: MessageSchema, ...errorResponses(400, 401, 403, 409, 413, 422, 429) },
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const principal = principalOf(req);
      await p.backpressure.check(principal.accountId);
      const { message, replayed } = await p.messages.send(principal, req.body, typeof key === 'string' ? key : null);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).send(message);
    },
  );

  app.post(
    '/v1/messages/batch',
    {
      config: { scope: 'messages:send' },
      schema: {
        tags: ['messages'],
        summary: 'Send up to 1,000 messages; each succeeds or fails on its own',
        body: Type.Object({
          messages: Type.Array(Type.Object({}, { additionalProperties: true, description: 'The fields of POST /v1/messages, plus an optional idempotency_key.' }), { minItems: 1, maxItems: 1000 }),
        }),
        response: {
          200: Type.Object({ data: Type.Array(Type.Object({ index: Type.Integer(), message: Type.Optional(MessageSchema), error: Type.Optional(Type.Unknown()) })) }),
          ...errorResponses(400, 401, 403, 413, 429),
        },
      },
    },
    async (req) => {
      const body = req.body as { messages: unknown[] };
      const principal = principalOf(req);
      // The whole batch is refused, not cut: a client retries it as it was, nothing half-accepted.
      await p.backpressure.check(principal.accountId);
      const results = await p.messages.sendBatch(principal, body.messages);
      return {
        data: results.map((r) => ('message' in r ? { index: r.index, message: r.message } : { index: r.index, error: errorBody(req, r.error.code, r.error.message, r.error.details).error })),
      };
    },
  );

  app.get(
    '/v1/messages',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['messages'],
        summary: 'List messages, newest first',
        querystring: ListQuery,
        response: { 200: Type.Object({ data: Type.Array(MessageSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req) => {
      const page = await p.messages.list(principalOf(req), req.query as Record<string, string | number | undefined>);
      await recordBodyRead(p, req, 'message_list', page.data.map((m) => m.id));
      return page;
    },
  );

  app.get(
    '/v1/messages/:id',
    { config: { scope: 'messages:read' }, schema: { tags: ['messages'], summary: 'Fetch a message', params: IdParams, response: { 200: MessageSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const message = await p.messages.get(principalOf(req), (req.params as { id: string }).id);
      await recordBodyRead(p, req, 'message', [message.id]);
      return message;
    },
  );

  app.get(
    '/v1/messages/:id/events',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['messages'],
        summary: "A message's status timeline, oldest first, with the raw provider data",
        params: IdParams,
        response: {
          200: Type.Object({
            data: Type.Array(
              Type.Object({
                status: Type.String(),
                at: Type.String({ format: 'date-time' }),
                ignored: Type.Boolean(),
                data: Type.Record(Type.String(), Type.Unknown()),
                data_redacted: Type.Optional(Type.Literal(true, { description: 'Present when the raw provider data is left out for this reader (the viewer role).' })),
              }),
            ),
          }),
          ...errorResponses(401, 403, 404),
        },
      },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const data = await p.messages.events(principalOf(req), id);
      // The raw provider data can quote the text (an inbound payload, an SMPP receipt).
      await recordBodyRead(p, req, 'message_events', [id]);
      return { data };
    },
  );

  app.post(
    '/v1/messages/:id/cancel',
    {
      config: { scope: 'messages:send' },
      schema: { tags: ['messages'], summary: 'Cancel a scheduled or queued message', params: IdParams, response: { 200: MessageSchema, ...errorResponses(400, 401, 403, 404) } },
    },
    async (req) => {
      if (req.body !== undefined && (typeof req.body !== 'object' || req.body === null)) throw validation('body', 'Send no body, or an empty JSON object.');
      return p.messages.cancel(principalOf(req), (req.params as { id: string }).id);
    },
  );
}
