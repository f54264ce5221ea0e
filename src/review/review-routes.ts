// /v1/review: the review queue (CONTRACT §5).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const Item = Type.Object({
  id: Type.String(),
  message_id: Type.String(),
  error_class: Type.String(),
  reason: Type.String(),
  status: Type.String({ enum: ['open', 'resolved'] }),
  resolution: Type.Union([Type.String(), Type.Null()]),
  note: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  resolved_at: Type.Union([Type.String(), Type.Null()]),
});

export function reviewRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/review',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['review'],
        summary: 'Messages waiting for a person: filtered content, repeated unknown failures',
        querystring: Type.Object({ status: Type.Optional(Type.String({ enum: ['open', 'resolved'] })), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })), cursor: Type.Optional(Type.String({ maxLength: 100 })) }),
        response: { 200: Type.Object({ data: Type.Array(Item), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const q = req.query as { status?: string; limit?: number; cursor?: string };
      const pr = principalOf(req);
      return p.review.list(pr.accountId, pr.mode, { status: q.status ?? 'open', limit: q.limit ?? 50, cursor: q.cursor });
    },
  );

  app.post(
    '/v1/review/:id/resolve',
    {
      config: { scope: 'messages:send' },
      schema: {
        tags: ['review'],
        summary: 'Resolve a review item',
        params: IdParams,
        body: Type.Optional(Type.Object({ resolution: Type.Optional(Type.String({ enum: ['dismissed', 'retried', 'suppressed', 'fixed'] })), note: Type.Optional(Type.String({ maxLength: 2000 })) })),
        response: { 200: Item, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => {
      const pr = principalOf(req);
      return p.review.resolve(pr.accountId, pr.mode, (req.params as { id: string }).id, (req.body ?? {}) as { resolution?: unknown; note?: unknown });
    },
  );
}
