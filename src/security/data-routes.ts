// /v1/settings: an account's data-handling settings (data-settings.ts): body retention, masked
// phone numbers in exports, bodies in status callbacks. Scope admin: they decide what is kept.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { configChanged } from '../storage/read-cache.ts';
import { transaction } from '../storage/transactions.ts';
import { recordBy } from '../audit/audit-service.ts';
import { applyDataPatch, MAX_RETENTION_DAYS, readDataSettings, writeDataSettings, type DataSettings } from './data-settings.ts';

const Settings = Type.Object({
  body_retention_days: Type.Union([Type.Integer({ minimum: 1, maximum: MAX_RETENTION_DAYS }), Type.Null()], {
    description: 'Message bodies, media references and raw provider payloads are removed this many days after each message was created; the message, its statuses and its timeline stay. null keeps them.',
  }),
  mask_phone_numbers: Type.Boolean({ description: 'Exports show phone numbers as +1202555**** instead of in full.' }),
  status_callback_include_body: Type.Boolean({ description: "Whether a message's own status_callback receives its body and media (webhook endpoints have include_body)." }),
});

export function dataSettingsRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/settings',
    { config: { scope: 'admin' }, schema: { tags: ['settings'], summary: "The account's data-handling settings: retention, masking, bodies in callbacks", response: { 200: Settings, ...errorResponses(401, 403) } } },
    async (req) => readDataSettings(p.storage.db, principalOf(req).accountId),
  );

  app.patch(
    '/v1/settings',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['settings'],
        summary: 'Change some of the data-handling settings',
        body: Type.Object(
          {
            body_retention_days: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
            mask_phone_numbers: Type.Optional(Type.Boolean()),
            status_callback_include_body: Type.Optional(Type.Boolean()),
          },
          { additionalProperties: false },
        ),
        response: { 200: Settings, ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const pr = principalOf(req);
      const accountId = pr.accountId;
      const next = await transaction(p.storage.db, async (tx) => {
        const before = await readDataSettings(tx, accountId);
        const changed = applyDataPatch(before, req.body);
        await writeDataSettings(tx, accountId, changed);
        // The values too: none is a secret, and "who turned retention off" is the question.
        const changes = Object.fromEntries(Object.keys((req.body ?? {}) as object).map((k) => [k, { from: before[k as keyof DataSettings], to: changed[k as keyof DataSettings] }]));
        await recordBy(tx, pr, { accountId, mode: null, action: 'settings.updated', target: { type: 'settings', id: 'data' }, details: { fields: Object.keys(changes), changes }, at: p.clock.now() });
        return changed;
      });
      configChanged(p.storage);
      return next;
    },
  );
}
