// /v1/consent: append a consent record, read a number's history (CONTRACT §8).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { validation } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { errorResponses } from '../http/schemas.ts';
import { normaliseNumber } from '../messages/phone.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Platform } from '../platform.ts';
import { seesBodies } from '../auth/scopes.ts';
import { CONSENT_SOURCES, evidenceFor, exportConsentCsv, parseConsentStatus } from './consent-service.ts';
import { readDataSettings } from '../security/data-settings.ts';
import { Readable } from 'node:stream';
import { transaction } from '../storage/transactions.ts';

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
          purpose: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$', description: 'transactional, marketing, a named list, or all (default)' })),
          channel: Type.Optional(Type.String({ enum: ['sms', 'mms', 'voice', 'rvm', 'all'] })),
          source: Type.Optional(Type.String({ enum: [...CONSENT_SOURCES] })),
          evidence: Type.Optional(
            Type.Object(
              {
                disclosure: Type.Optional(Type.String({ maxLength: 2000, description: 'The text of the disclosure the person agreed to.' })),
                ip: Type.Optional(Type.String({ maxLength: 64, description: "The person's IP address (a web form's visitor, not the API caller)." })),
                user_agent: Type.Optional(Type.String({ maxLength: 1000 })),
                form_url: Type.Optional(Type.String({ maxLength: 2000 })),
                message_id: Type.Optional(Type.String({ maxLength: 100, description: 'The inbound message that carried the consent.' })),
                collected_at: Type.Optional(Type.String({ maxLength: 64, description: 'When it was given, if earlier than this record.' })),
              },
              { additionalProperties: true },
            ),
          ),
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
      const id = await transaction(p.storage.db, (tx) =>
        p.consent.record(tx, {
          accountId: pr.accountId,
          mode: pr.mode,
          phone,
          status: parseConsentStatus(b.status),
          purpose: b.purpose ?? 'all',
          channel: b.channel ?? 'all',
          source: b.source ?? 'api',
          // The caller's own address is kept apart: a web form's backend records the visitor's IP
          // and user agent in `evidence`, and those must not be overwritten by the server's.
          evidence: { ...evidence, recorded_by: pr.userId ?? pr.credentialId, api_ip: req.ip, api_user_agent: req.headers['user-agent'] ?? null },
          by: pr,
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
      const history = (await p.consent.history(pr.accountId, pr.mode, phone)).map((r) => ({ ...r, evidence: evidenceFor(r.evidence, seesBodies(pr)) }));
      return { phone, suppressed: await p.consent.isSuppressed(p.storage.db, pr.accountId, pr.mode, phone), data: history };
    },
  );

  app.get(
    '/v1/consent/export',
    {
      config: { scope: 'audit:read' },
      schema: {
        tags: ['consent'],
        summary: 'The consent ledger as CSV for an auditor, oldest first, with its evidence',
        querystring: Type.Object({ phone: Type.Optional(Type.String()), since: Type.Optional(Type.String({ format: 'date-time' })), until: Type.Optional(Type.String({ format: 'date-time' })) }),
        produces: ['text/csv'],
        response: { 200: Type.String({ description: 'id,created_at,phone,status,purpose,channel,source,disclosure,ip,user_agent,form_url,message_id,evidence' }), ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      const q = req.query as { phone?: string; since?: string; until?: string };
      const filter = {
        maskPhones: (await readDataSettings(p.storage.db, pr.accountId)).mask_phone_numbers,
        phone: q.phone === undefined ? undefined : normaliseNumber(q.phone, 'phone').e164,
        since: q.since === undefined ? undefined : Date.parse(q.since),
        until: q.until === undefined ? undefined : Date.parse(q.until),
        // A keyword's evidence quotes the message: shown to those who may read bodies only.
        bodies: seesBodies(pr),
      };
      // An export is recorded when it is handed out, before the first row is streamed.
      await recordBy(p.storage.db, pr, { accountId: pr.accountId, action: 'export.created', target: { type: 'export', id: 'consent_csv' }, details: { export: 'consent', phone: filter.phone ?? null, since: q.since ?? null, until: q.until ?? null, bodies: filter.bodies }, at: p.clock.now() });
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="consent-${pr.mode}-${new Date(p.clock.now()).toISOString().slice(0, 10)}.csv"`);
      return reply.send(Readable.from(exportConsentCsv(p.storage.db, pr.accountId, pr.mode, filter)));
    },
  );
}
