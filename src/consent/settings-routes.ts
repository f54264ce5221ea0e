// /v1/settings/messaging: an account's keyword texts, custom keywords, quiet hours and country
// rules (scope admin: these decide what the account may send).
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { errorResponses } from '../http/schemas.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Platform } from '../platform.ts';
import { configChanged } from '../storage/read-cache.ts';
import { applyPatch, readMessagingSettings, writeMessagingSettings } from './messaging-settings.ts';
import { transaction } from '../storage/transactions.ts';

const HhMm = Type.String({ pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' });
const Settings = Type.Object({
  keywords: Type.Object({
    opt_out_reply: Type.String({ description: 'The one confirmation after STOP and its synonyms. {account} is the account name.' }),
    opt_in_reply: Type.String({ description: 'The reply to START, UNSTOP, YES.' }),
    help_reply: Type.String({ description: 'The reply to HELP and INFO.' }),
    custom: Type.Array(Type.Object({ keyword: Type.String({ examples: ['JOIN VIP'] }), list: Type.String({ examples: ['vip'] }), reply: Type.String() })),
  }),
  quiet_hours: Type.Object({
    enabled: Type.Boolean(),
    allowed_from: HhMm,
    allowed_until: HhMm,
    fallback_time_zone: Type.String(),
  }),
  countries: Type.Object({ allow: Type.Array(Type.String()), block: Type.Array(Type.String()) }),
  mms_fallback_to_sms_link: Type.Boolean({ description: 'When no route carries media, send an MMS as SMS with its media links in the text (otherwise it is refused).' }),
});
const PartialSettings = Type.Object(
  {
    keywords: Type.Optional(Type.Object({}, { additionalProperties: true })),
    quiet_hours: Type.Optional(Type.Object({}, { additionalProperties: true })),
    countries: Type.Optional(Type.Object({}, { additionalProperties: true })),
    mms_fallback_to_sms_link: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, description: 'Any subset of the settings; what is left out stays as it is.' },
);

export function settingsRoutes(app: FastifyInstance, p: Platform): void {
  app.get(
    '/v1/settings/messaging',
    { config: { scope: 'admin' }, schema: { tags: ['settings'], summary: "The account's keyword texts, quiet hours and country rules", response: { 200: Settings, ...errorResponses(401, 403) } } },
    async (req) => readMessagingSettings(p.storage.db, principalOf(req).accountId),
  );

  app.patch(
    '/v1/settings/messaging',
    {
      config: { scope: 'admin' },
      schema: { tags: ['settings'], summary: 'Change some of the messaging settings', body: PartialSettings, response: { 200: Settings, ...errorResponses(400, 401, 403) } },
    },
    async (req) => {
      const pr = principalOf(req);
      const accountId = pr.accountId;
      const next = await transaction(p.storage.db, async (tx) => {
        const changed = applyPatch(await readMessagingSettings(tx, accountId), req.body);
        await writeMessagingSettings(tx, accountId, changed);
        await recordBy(tx, pr, { accountId, mode: null, action: 'settings.updated', target: { type: 'settings', id: 'messaging' }, details: { fields: Object.keys((req.body ?? {}) as object) }, at: p.clock.now() });
        return changed;
      });
      configChanged(p.storage);
      return next;
    },
  );
}
