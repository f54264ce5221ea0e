// /v1/campaigns (CONTRACT §11) and the public short-link redirect /l/{code}.
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const CSV_BODY_LIMIT = 50 * 1024 * 1024;

const StatsSchema = Type.Object({
  total: Type.Integer(),
  queued: Type.Integer({ description: 'Not yet gone out: recipients waiting for release (pacing, send window) and messages scheduled, queued or sending.' }),
  sent: Type.Integer({ description: 'Accepted by the carrier (delivered and undelivered included).' }),
  delivered: Type.Integer(),
  failed: Type.Integer({ description: 'Undelivered or failed, and recipients whose text could not be rendered.' }),
  failed_by_class: Type.Record(Type.String(), Type.Integer()),
  suppressed: Type.Integer({ description: 'Refused before sending: opted out, no consent, invalid or suppressed number, filtered.' }),
  expired: Type.Integer(),
  canceled: Type.Integer(),
  replies: Type.Integer({ description: 'Recipients who sent a message back after the start.' }),
  clicks: Type.Integer(),
});

export const CampaignSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('campaign'),
  name: Type.String(),
  status: Type.String({ enum: ['draft', 'scheduled', 'running', 'paused', 'completed', 'canceled'] }),
  audience: Type.Record(Type.String(), Type.Unknown()),
  template_id: Nullable(Type.String()),
  template_version: Type.Union([Type.Integer(), Type.Null()]),
  body: Type.String(),
  channel: Type.String(),
  purpose: Type.String(),
  from: Nullable(Type.String()),
  start_at: Nullable(Type.String({ format: 'date-time' })),
  rate_per_minute: Type.Union([Type.Integer(), Type.Null()]),
  send_window: Type.Union([Type.Object({ start: Type.String(), end: Type.String() }), Type.Null()]),
  validity_period: Type.Integer(),
  stats: StatsSchema,
  created_at: Type.String({ format: 'date-time' }),
  started_at: Nullable(Type.String({ format: 'date-time' })),
  completed_at: Nullable(Type.String({ format: 'date-time' })),
});

const CampaignCreate = Type.Object({
  name: Type.String({ maxLength: 200 }),
  audience: Type.Object({ list_id: Type.Optional(Type.String()), segment_id: Type.Optional(Type.String()), csv: Type.Optional(Type.String({ description: 'A CSV text with a phone column; other columns are template variables.' })) }),
  template_id: Type.Optional(Type.String()),
  body: Type.Optional(Type.String({ description: 'Liquid text, when no template_id.' })),
  channel: Type.Optional(Type.String({ enum: ['sms', 'voice', 'rvm'], default: 'sms' })),
  purpose: Type.Optional(Type.String({ enum: ['transactional', 'marketing'], default: 'transactional' })),
  from: Type.Optional(Type.String()),
  start_at: Type.Optional(Type.String({ description: 'ISO 8601; start waits until then.' })),
  rate_per_minute: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
  send_window: Type.Optional(Type.Union([Type.Object({ start: Type.String(), end: Type.String() }), Type.Null()])),
  validity_period: Type.Optional(Type.Integer({ minimum: 60, description: 'Seconds a released message may wait to go out; default 7200 (SWITCHBOARD_CAMPAIGN_VALIDITY_S).' })),
  track_links: Type.Optional(Type.Boolean({ default: true })),
});

const RecipientSchema = Type.Object({
  seq: Type.Integer(),
  phone: Type.String(),
  contact_id: Nullable(Type.String()),
  status: Type.String({ description: "The message's status once it has one; before that pending, suppressed, failed or canceled." }),
  message_id: Nullable(Type.String()),
  error: Type.Union([Type.Object({ code: Type.String(), message: Type.String() }), Type.Null()]),
});

export function campaignRoutes(app: FastifyInstance, p: Platform): void {
  const tags = ['campaigns'];
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  app.post(
    '/v1/campaigns',
    {
      config: { scope: 'campaigns:send' },
      bodyLimit: CSV_BODY_LIMIT,
      schema: { tags, summary: 'Create a campaign (status draft)', body: CampaignCreate, response: { 201: CampaignSchema, ...errorResponses(400, 401, 403, 404, 413) } },
    },
    async (req, reply) => reply.status(201).send(await p.campaigns.create(principalOf(req), req.body)),
  );
  app.get(
    '/v1/campaigns',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags,
        summary: 'Campaigns, newest first',
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200 })), cursor: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ data: Type.Array(CampaignSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(401, 403) },
      },
    },
    async (req) => p.campaigns.list(principalOf(req), req.query as { limit?: number; cursor?: string }),
  );
  app.get(
    '/v1/campaigns/:id',
    { config: { scope: 'messages:read' }, schema: { tags, summary: 'A campaign with its live stats', params: IdParams, response: { 200: CampaignSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => p.campaigns.get(principalOf(req), id(req)),
  );
  app.get(
    '/v1/campaigns/:id/recipients',
    {
      config: { scope: 'messages:read' },
      schema: {
        tags,
        summary: 'Per-recipient results in campaign order',
        params: IdParams,
        querystring: Type.Object({ status: Type.Optional(Type.String()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })), cursor: Type.Optional(Type.String()) }),
        response: { 200: Type.Object({ data: Type.Array(RecipientSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => p.campaigns.recipients(principalOf(req), id(req), req.query as { limit?: number; cursor?: string; status?: string }),
  );

  const actions = {
    start: 'Start a draft campaign (scheduled when start_at is ahead)',
    pause: 'Pause: no new submits; released messages wait',
    resume: 'Resume a paused campaign',
    cancel: 'Cancel: nothing more goes out; waiting messages are canceled',
  } as const;
  for (const [action, summary] of Object.entries(actions) as Array<[keyof typeof actions, string]>) {
    app.post(
      `/v1/campaigns/:id/${action}`,
      { config: { scope: 'campaigns:send' }, schema: { tags, summary, params: IdParams, response: { 200: CampaignSchema, ...errorResponses(400, 401, 403, 404) } } },
      async (req) => p.campaigns[action](principalOf(req), id(req)),
    );
  }

  // Unauthenticated on purpose: recipients follow these from their phones.
  app.get(
    '/l/:code',
    { schema: { hide: true, params: Type.Object({ code: Type.String({ maxLength: 40 }) }) } },
    async (req, reply) => {
      const url = await p.links.click((req.params as { code: string }).code, req.headers['user-agent'] ?? null);
      if (!url) return reply.status(404).type('text/plain').send('This link is not known.');
      return reply.header('cache-control', 'no-store').redirect(url, 302);
    },
  );
}
