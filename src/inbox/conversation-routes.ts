// /v1/conversations (CONTRACT §8): the inbox, and replies from the same number.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { recordBodyRead } from '../audit/audit-http.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, MessageSchema, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { markRead, withUnread } from './conversation-reads.ts';
import { conversationMessages, getConversation, listConversations, replyInConversation } from './conversation-service.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const ConversationSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('conversation'),
  contact: Type.Object({ id: Type.String(), phone: Type.String(), name: Nullable(Type.String()), owner: Nullable(Type.String()) }),
  number: Type.String({ description: "The account's number this conversation is on; replies go from it." }),
  last_message: Type.Union([MessageSchema, Type.Null()]),
  last_message_at: Type.String({ format: 'date-time' }),
  last_direction: Nullable(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  unread: Type.Optional(Type.Integer({ description: 'For a signed-in person: inbound messages since they last read it (POST /v1/conversations/{id}/read).' })),
});
const Page = Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String()) });

export function conversationRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/conversations',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['inbox'],
        summary: 'Conversations, most recent activity first',
        querystring: Type.Object({ ...Page.properties, owner: Type.Optional(Type.String()), number: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ data: Type.Array(ConversationSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const page = await listConversations(p.storage, principalOf(req), req.query as { limit?: number; cursor?: string; owner?: string; number?: string });
      await recordBodyRead(p, req, 'conversation_list', page.data.flatMap((c) => (c.last_message ? [c.last_message.id] : [])));
      return { ...page, data: await withUnread(p.storage, principalOf(req), page.data) };
    },
  );

  app.get(
    '/v1/conversations/:id',
    { config: { scope: 'messages:read' }, schema: { tags: ['inbox'], summary: 'Fetch a conversation', params: IdParams, response: { 200: ConversationSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const c = await getConversation(p.storage, principalOf(req), (req.params as { id: string }).id);
      await recordBodyRead(p, req, 'conversation', c.last_message ? [c.last_message.id] : [], { type: 'conversation', id: c.id });
      return c;
    },
  );

  app.post(
    '/v1/conversations/:id/read',
    {
      config: { scope: 'messages:read' },
      schema: { tags: ['inbox'], summary: 'Mark a conversation read for the signed-in person (their unread count becomes 0)', params: IdParams, response: { 200: Type.Object({ id: Type.String(), unread: Type.Integer() }), ...errorResponses(401, 403, 404) } },
    },
    async (req) => markRead(p.storage, principalOf(req), (req.params as { id: string }).id, p.clock.now()),
  );

  app.get(
    '/v1/conversations/:id/messages',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['inbox'],
        summary: "A conversation's messages, both directions, newest first",
        params: IdParams,
        querystring: Page,
        response: { 200: Type.Object({ data: Type.Array(MessageSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const page = await conversationMessages(p.storage, principalOf(req), id, req.query as { limit?: number; cursor?: string });
      await recordBodyRead(p, req, 'conversation_messages', page.data.map((m) => m.id), { type: 'conversation', id });
      return page;
    },
  );

  app.post(
    '/v1/conversations/:id/messages',
    {
      // An agent replies in the inbox without holding messages:send (src/users/roles.ts).
      config: { scope: 'messages:send', permission: 'conversations:reply' },
      schema: {
        tags: ['inbox'],
        summary: "Reply in a conversation: to its contact, from the conversation's number",
        description: 'The fields of POST /v1/messages except to and from. Every consent rule applies (an opted-out contact answers 422 OPTED_OUT).',
        params: IdParams,
        headers: Type.Object({ 'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255 })) }),
        body: Type.Object({}, { additionalProperties: true }),
        response: { 202: MessageSchema, ...errorResponses(400, 401, 403, 404, 409, 422) },
      },
    },
    async (req, reply) => {
      const key = req.headers['idempotency-key'];
      const { message, replayed } = await replyInConversation(p, principalOf(req), (req.params as { id: string }).id, req.body as Record<string, unknown>, typeof key === 'string' ? key : null);
      if (replayed) reply.header('idempotent-replayed', 'true');
      return reply.status(202).send(message);
    },
  );
}
