// Public routes where HTTP providers call us back: POST (or GET) /hooks/{connector_id}/status for
// delivery receipts and /hooks/{connector_id}/inbound for inbound messages. No bearer token: the
// provider's signature is the authentication, and the connector checks it over the body exactly
// as received, so these routes keep the raw text instead of parsing it.
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.ts';
import type { Platform } from '../platform.ts';
import { CONNECTOR_TYPES } from './connector-registry.ts';
import { trimSlash } from './provider-http.ts';

export async function providerWebhookRoutes(app: FastifyInstance, p: Platform): Promise<void> {
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
    for (const kind of ['status', 'inbound'] as const) {
      scope.route({
        method: ['POST', 'GET'],
        url: `/hooks/:connectorId/${kind}`,
        config: { public: true },
        schema: { hide: true },
        handler: async (req, reply) => {
          const { connectorId } = req.params as { connectorId: string };
          // Only an HTTP provider's session is started here: an unauthenticated call must not
          // open, say, an SMPP bind in the API process.
          const row = /^[A-Za-z0-9_-]{1,64}$/.test(connectorId) ? await p.connectors.row(connectorId) : null;
          const connector = row?.enabled && CONNECTOR_TYPES[row.type]?.webhooks ? await p.connectors.get(connectorId) : null;
          if (!connector?.handleWebhook) throw new AppError('NOT_FOUND', `No connector ${connectorId} takes provider callbacks.`, { id: connectorId });
          const baseUrl = trimSlash(p.config.SWITCHBOARD_PUBLIC_URL ?? `${req.protocol}://${req.host}`);
          const answer = await connector.handleWebhook({
            kind,
            method: req.method,
            path: req.url,
            baseUrl,
            headers: req.headers,
            rawBody: typeof req.body === 'string' ? req.body : '',
          });
          if (answer.contentType) reply.type(answer.contentType);
          return reply.status(answer.status).send(answer.body ?? '');
        },
      });
    }
  });
}
