// GET /v1/audit (scope audit:read): the account's audit log, newest first. A caller sees the
// entries of its own mode and those that belong to no mode (people, sign-ins).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import type { AuditQuery } from './audit-service.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const AuditEntrySchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('audit_entry'),
  seq: Type.Integer({ description: 'Place in the account’s chain: 1, 2, 3, … with no gaps.' }),
  at: Type.String({ format: 'date-time' }),
  account_id: Nullable(Type.String()),
  mode: Nullable(Type.String({ enum: ['test', 'live'] })),
  actor: Type.Object({ type: Type.String({ enum: ['user', 'api_key', 'oauth', 'twilio', 'system'] }), id: Type.String() }),
  action: Type.String({ examples: ['session.created', 'key.created', 'message.body_read'] }),
  target: Nullable(Type.Object({ type: Type.String(), id: Type.String() })),
  ip: Nullable(Type.String({ description: 'The peer address of the request (trustProxy is off).' })),
  details: Type.Record(Type.String(), Type.Unknown()),
  prev_hash: Type.String({ description: 'SHA-256 of the entry before it in the chain.' }),
  hash: Type.String({ description: 'SHA-256 over this entry’s canonical serialisation, prev_hash included.' }),
});

export function auditRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/audit',
    {
      config: { scope: 'audit:read' },
      schema: {
        tags: ['audit'],
        summary: 'The audit log, newest first',
        description: 'Sign-ins, sign-outs, people and roles, keys and OAuth clients, connectors, routes, senders, webhooks, consent changes, exports, campaign starts, and every reading of message bodies by a person. Append-only and hash-chained: `switchboard audit verify` checks it.',
        querystring: Type.Object({
          action: Type.Optional(Type.String({ maxLength: 100, description: 'An action, or a family such as key.*' })),
          actor: Type.Optional(Type.String({ maxLength: 100, description: 'A user, API key or OAuth client id.' })),
          target: Type.Optional(Type.String({ maxLength: 100, description: 'The id of the object acted on.' })),
          since: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601, inclusive.' })),
          until: Type.Optional(Type.String({ maxLength: 40, description: 'ISO 8601, exclusive.' })),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })),
          cursor: Type.Optional(Type.String({ maxLength: 20 })),
        }),
        response: { 200: Type.Object({ data: Type.Array(AuditEntrySchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const pr = principalOf(req);
      return p.audit.list(pr.accountId, pr.mode, req.query as AuditQuery);
    },
  );

  app.get(
    '/v1/audit/:id',
    { config: { scope: 'audit:read' }, schema: { tags: ['audit'], summary: 'One audit entry', params: IdParams, response: { 200: AuditEntrySchema, ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const pr = principalOf(req);
      return p.audit.get(pr.accountId, pr.mode, (req.params as { id: string }).id);
    },
  );
}
