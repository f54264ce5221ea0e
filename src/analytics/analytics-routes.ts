// GET /v1/analytics/messages: the numbers behind the dashboard's charts (no bodies, so every
// reader role may see them).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { messageAnalytics, type AnalyticsQuery } from './analytics-service.ts';

const Rate = Type.Union([Type.Number(), Type.Null()]);
const Count = (key: string, value: ReturnType<typeof Type.String> | ReturnType<typeof Type.Union>) => Type.Object({ [key]: value, count: Type.Integer() });

export function analyticsRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/analytics/messages',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags: ['analytics'],
        summary: 'Message volume and delivery over time, failures by error class and by connector, reply and opt-out rates',
        description: 'Buckets start at whole UTC hours or days; empty buckets are left out. Rates are fractions (0–1) of the outbound messages in the range, null when there were none. from defaults to seven days before to; to to now.',
        querystring: Type.Object({
          from: Type.Optional(Type.String({ description: 'ISO 8601, inclusive' })),
          to: Type.Optional(Type.String({ description: 'ISO 8601, exclusive' })),
          bucket: Type.Optional(Type.String({ enum: ['hour', 'day'], default: 'day' })),
        }),
        response: {
          200: Type.Object({
            from: Type.String(),
            to: Type.String(),
            bucket: Type.String(),
            buckets: Type.Array(Type.Object({ start: Type.String(), outbound: Type.Integer(), inbound: Type.Integer(), delivered: Type.Integer(), failed: Type.Integer(), delivery_rate: Rate })),
            totals: Type.Object({ outbound: Type.Integer(), inbound: Type.Integer(), delivered: Type.Integer(), failed: Type.Integer(), opt_outs: Type.Integer() }),
            failures_by_class: Type.Array(Count('error_class', Type.String())),
            failures_by_connector: Type.Array(Count('connector_id', Type.Union([Type.String(), Type.Null()]))),
            delivery_rate: Rate,
            reply_rate: Rate,
            opt_out_rate: Rate,
          }),
          ...errorResponses(400, 401, 403),
        },
      },
    },
    async (req) => messageAnalytics(p.storage, principalOf(req), req.query as AnalyticsQuery, p.clock.now()),
  );
}
