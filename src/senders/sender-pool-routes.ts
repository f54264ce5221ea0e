// /v1/sender-pools, scope connectors:manage like /v1/senders.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const PoolView = Type.Object({
  id: Type.String(),
  object: Type.Literal('sender_pool'),
  messaging_service_sid: Type.String({ description: 'The pool as a Twilio messaging service: give it as MessagingServiceSid on the Twilio-compatible API.' }),
  name: Type.String(),
  sender_ids: Type.Array(Type.String()),
  addresses: Type.Array(Type.String()),
  sticky: Type.Boolean({ description: 'A recipient always hears from the number they first heard from.' }),
  area_code_match: Type.Boolean({ description: "Numbers with the recipient's area code (then country) come first." }),
  default: Type.Boolean({ description: 'Used for messages that name neither from nor a pool.' }),
  created_at: Type.String(),
  updated_at: Type.String(),
});
const fields = {
  sender_ids: Type.Optional(Type.Array(Type.String(), { description: 'The senders in the pool, by id (or give addresses).' })),
  addresses: Type.Optional(Type.Array(Type.String(), { description: 'The senders in the pool, by address.' })),
  // No schema defaults: they would be filled into every PATCH. Creation defaults are in the service.
  sticky: Type.Optional(Type.Boolean({ description: 'Default true on creation.' })),
  area_code_match: Type.Optional(Type.Boolean({ description: 'Default true on creation.' })),
  default: Type.Optional(Type.Boolean({ description: 'Default false on creation.' })),
};

const config = { scope: 'connectors:manage' as const };
const id = (req: { params: unknown }) => (req.params as { id: string }).id;

export function senderPoolRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/sender-pools',
    {
      config,
      schema: {
        tags: ['senders'],
        summary: 'Create a sender pool: messages sent from it get one of its numbers',
        body: Type.Object({ name: Type.String(), ...fields }),
        response: { 201: PoolView, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => reply.status(201).send(await p.senderPoolAdmin.create(principalOf(req).accountId, req.body, principalOf(req))),
  );
  app.get('/v1/sender-pools', { config, schema: { tags: ['senders'], summary: 'Sender pools of the account', response: { 200: Type.Object({ data: Type.Array(PoolView) }), ...errorResponses(401, 403) } } }, async (req) => ({
    data: await p.senderPoolAdmin.list(principalOf(req).accountId),
  }));
  app.get('/v1/sender-pools/:id', { config, schema: { tags: ['senders'], summary: 'A sender pool', params: IdParams, response: { 200: PoolView, ...errorResponses(401, 403, 404) } } }, async (req) =>
    p.senderPoolAdmin.get(principalOf(req).accountId, id(req)),
  );
  app.patch(
    '/v1/sender-pools/:id',
    {
      config,
      schema: {
        tags: ['senders'],
        summary: 'Change a sender pool; sender_ids or addresses replace its senders',
        params: IdParams,
        body: Type.Object({ name: Type.Optional(Type.String()), ...fields }),
        response: { 200: PoolView, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => p.senderPoolAdmin.update(principalOf(req).accountId, id(req), req.body, principalOf(req)),
  );
  app.delete(
    '/v1/sender-pools/:id',
    { config, schema: { tags: ['senders'], summary: 'Delete a sender pool (its senders stay)', params: IdParams, response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }), ...errorResponses(401, 403, 404) } } },
    async (req) => p.senderPoolAdmin.remove(principalOf(req).accountId, id(req), principalOf(req)),
  );
}
