// /v1/consent: append a consent record, read a number's history (CONTRACT §8).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { validation } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { errorResponses } from '../http/schemas.ts';
import { normaliseNumber } from '../messages/phone.ts';
import type { Platform } from '../platform.ts';
import { CONSENT_SOURCES, parseConsentStatus } from './consent-service.ts';

const Record_ = Type.Object({
  id: Type.Integer(),
  phone: Type.String(),
  status: Type.String(),
  purpose: Type.String(),
  channel: Type.String(),
  source: Type.String(),
  evidence: Type.Record(Type.String(), Type.Unknown()),
  created_at: Type.String(),
});

export function consentRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/consent',
    {
      config: { scope: 'consent:write' },
      schema: {
        tags: ['consent'],
        summary: 'Append a consent record (never updates one in place)',
        body: Type.Object({
          phone: Type.String(),
          status: Type.String({ enum: ['opted_in', 'opted_out'] }),
          purpose: Type.Optional(Type.String({ maxLength: 64, description: 'transactional, marketing, a named list, or all (default)' })),
          channel: Type.Optional(Type.String({ enum: ['sms', 'mms', 'voice', 'rvm', 'all'] })),
          source: Type.Optional(Type.String({ enum: [...CONSENT_SOURCES] })),
          evidence: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
        }),
        response: { 201: Type.Object({ id: Type.Integer(), history: Type.Array(Record_) }), ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      const b = req.body as { phone: string; status: string; purpose?: string; channel?: string; source?: string; evidence?: Record<string, unknown> };
      const phone = normaliseNumber(b.phone, 'phone').e164;
      const evidence = b.evidence ?? {};
      if (JSON.stringify(evidence).length > 10_000) throw validation('evidence', 'evidence is larger than 10 KB.');
      const id = await p.storage.db.transaction().execute((tx) =>
        p.consent.record(tx, {
          accountId: pr.accountId,
          mode: pr.mode,
          phone,
          status: parseConsentStatus(b.status),
          purpose: b.purpose ?? 'all',
          channel: b.channel ?? 'all',
          source: b.source ?? 'api',
          evidence: { ...evidence, recorded_by: pr.credentialId, ip: req.ip, user_agent: req.headers['user-agent'] ?? null },
        }),
      );
      return reply.status(201).send({ id, history: await p.consent.history(pr.accountId, pr.mode, phone) });
    },
  );

  app.get(
    '/v1/consent',
    {
      config: { scope: 'contacts:read' },
      schema: {
        tags: ['consent'],
        summary: "A number's append-only consent history, oldest first",
        querystring: Type.Object({ phone: Type.String() }),
        response: { 200: Type.Object({ phone: Type.String(), suppressed: Type.Boolean(), data: Type.Array(Record_) }), ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req) => {
      const pr = principalOf(req);
      const phone = normaliseNumber((req.query as { phone: string }).phone, 'phone').e164;
      return { phone, suppressed: await p.consent.isSuppressed(p.storage.db, pr.accountId, pr.mode, phone), data: await p.consent.history(pr.accountId, pr.mode, phone) };
    },
  );
}
