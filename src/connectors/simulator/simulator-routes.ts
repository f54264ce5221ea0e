// POST /v1/simulator/inbound (test mode): a message as if a handset sent it.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { BUILTIN_SIMULATOR_ID } from '../../accounts/account-service.ts';
import { principalOf } from '../../http/auth.ts';
import { MessageSchema, errorResponses } from '../../http/schemas.ts';
import { toMessageView } from '../../messages/message-view.ts';
import { normaliseNumber } from '../../messages/phone.ts';
import type { Platform } from '../../platform.ts';
import { validation } from '../../errors.ts';

export function simulatorRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/simulator/inbound',
    {
      config: { scope: 'messages:send', testOnly: true },
      schema: {
        tags: ['simulator'],
        summary: 'Inject an inbound message as if a handset sent it (test mode)',
        body: Type.Object({ from: Type.String(), to: Type.Optional(Type.String()), body: Type.String({ maxLength: 5000 }) }),
        response: { 201: MessageSchema, ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      const b = req.body as { from: string; to?: string; body: string };
      const from = normaliseNumber(b.from, 'from').e164;
      const account = await p.accounts.get(pr.accountId);
      const to = b.to ? normaliseNumber(b.to, 'to').e164 : account.default_sender;
      if (!to) throw validation('to', 'to is required: this account has no default sender.');
      const row = await p.receipts.inbound(BUILTIN_SIMULATOR_ID, { from, to, body: b.body, accountId: pr.accountId, mode: pr.mode, raw: { injected: true } });
      return reply.status(201).send(toMessageView(row!));
    },
  );
}
