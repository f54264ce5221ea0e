// POST /oauth/token (client-credentials grant) and the credential management routes
// /v1/keys and /v1/clients (scope admin: an owner or admin person, or an admin token). Secrets
// appear once, in the creation answer. Each credential records who created it (`created_by`),
// and every creation and revocation is in the audit log. A caller sees and revokes only the
// credentials of its own mode.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../errors.ts';
import { auditContext } from '../audit/audit-http.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { OAuthError, parseScopes } from './credential-service.ts';

const CreatedBy = Type.Union([Type.String(), Type.Null()], { description: 'The user (user_…), API key (key_…) or OAuth client that created it, or cli; null for credentials older than this field.' });

const CreateCredential = Type.Object({
  scopes: Type.Array(Type.String(), { minItems: 1 }),
  name: Type.Optional(Type.String({ maxLength: 200 })),
});

function basicCredentials(header: string | undefined): { id: string; secret: string } | null {
  const m = header ? /^Basic\s+(\S+)$/i.exec(header) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return null;
  return { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
}

export function authRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/oauth/token',
    {
      schema: {
        tags: ['auth'],
        summary: 'OAuth 2.0 client-credentials grant',
        description: 'Client id and secret by HTTP Basic or as form fields. The token carries only the scopes asked for (all the client holds when none are asked).',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: Type.Object({
          grant_type: Type.String(),
          client_id: Type.Optional(Type.String()),
          client_secret: Type.Optional(Type.String()),
          scope: Type.Optional(Type.String()),
        }),
        response: {
          200: Type.Object({ access_token: Type.String(), token_type: Type.Literal('Bearer'), expires_in: Type.Integer(), scope: Type.String() }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (req, reply) => {
      const body = req.body as { grant_type: string; client_id?: string; client_secret?: string; scope?: string };
      reply.header('cache-control', 'no-store');
      try {
        if (body.grant_type !== 'client_credentials') throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported.');
        const basic = basicCredentials(req.headers.authorization);
        const id = basic?.id ?? body.client_id;
        const secret = basic?.secret ?? body.client_secret;
        if (!id || !secret) throw new OAuthError(401, 'invalid_client', 'Send the client id and secret with HTTP Basic or as client_id and client_secret.');
        return await p.credentials.issueToken(id, secret, body.scope);
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err;
        // The body keeps CONTRACT §3's shape; the RFC 6749 error code is the `code`.
        const code = err.oauthCode === 'invalid_client' ? 'AUTH_FAILED' : err.oauthCode === 'invalid_scope' ? 'invalid_scope' : 'VALIDATION_ERROR';
        if (err.status === 401) reply.header('www-authenticate', 'Basic realm="switchboard"');
        const body = { error: { code, message: err.message, retryable: false, request_id: String(req.id), details: { oauth_error: err.oauthCode } } };
        return (reply as FastifyReply).code(err.status).send(body);
      }
    },
  );

  const KeyView = Type.Object({
    id: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    mode: Type.String(),
    scopes: Type.Array(Type.String()),
    prefix: Type.String(),
    created_at: Type.String(),
    revoked_at: Type.Union([Type.String(), Type.Null()]),
    created_by: CreatedBy,
  });
  const ClientView = Type.Object({
    client_id: Type.String(),
    name: Type.Union([Type.String(), Type.Null()]),
    mode: Type.String(),
    scopes: Type.Array(Type.String()),
    created_at: Type.String(),
    revoked_at: Type.Union([Type.String(), Type.Null()]),
    created_by: CreatedBy,
  });

  app.get(
    '/v1/keys',
    { config: { scope: 'admin' }, schema: { tags: ['auth'], summary: 'API keys of the account (without secrets)', response: { 200: Type.Object({ data: Type.Array(KeyView) }), ...errorResponses(401, 403) } } },
    async (req) => {
      const pr = principalOf(req);
      return { data: await p.credentials.listKeys(pr.accountId, pr.mode) };
    },
  );

  app.post(
    '/v1/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['auth'],
        summary: 'Create an API key in the mode of the calling token; the secret is shown once',
        body: CreateCredential,
        response: { 201: Type.Object({ id: Type.String(), secret: Type.String(), mode: Type.String(), scopes: Type.Array(Type.String()), name: Type.Union([Type.String(), Type.Null()]), account_id: Type.String(), created_at: Type.String(), created_by: CreatedBy }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      const body = req.body as { scopes: string[]; name?: string };
      return reply.status(201).send(await p.credentials.createKey(pr.accountId, { scopes: parseScopes(body.scopes), mode: pr.mode, name: body.name }, auditContext(req)));
    },
  );

  app.delete(
    '/v1/keys/:id',
    { config: { scope: 'admin' }, schema: { tags: ['auth'], summary: 'Revoke an API key, at once', params: IdParams, response: { 200: Type.Object({ id: Type.String(), revoked: Type.Boolean() }), ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const pr = principalOf(req);
      if (!(await p.credentials.revokeKey(pr.accountId, id, auditContext(req), pr.mode))) throw new AppError('NOT_FOUND', `No active API key ${id} in this account.`, { id });
      return { id, revoked: true };
    },
  );

  app.post(
    '/v1/clients',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['auth'],
        summary: 'Create an OAuth client in the mode of the calling token; the secret is shown once',
        body: CreateCredential,
        response: { 201: Type.Object({ client_id: Type.String(), client_secret: Type.String(), mode: Type.String(), scopes: Type.Array(Type.String()), account_id: Type.String(), created_at: Type.String(), created_by: CreatedBy }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      const body = req.body as { scopes: string[]; name?: string };
      return reply.status(201).send(await p.credentials.createClient(pr.accountId, { scopes: parseScopes(body.scopes), mode: pr.mode, name: body.name }, auditContext(req)));
    },
  );

  app.get(
    '/v1/clients',
    { config: { scope: 'admin' }, schema: { tags: ['auth'], summary: 'OAuth clients of the account in this mode (without secrets)', response: { 200: Type.Object({ data: Type.Array(ClientView) }), ...errorResponses(401, 403) } } },
    async (req) => {
      const pr = principalOf(req);
      return { data: await p.credentials.listClients(pr.accountId, pr.mode) };
    },
  );

  app.delete(
    '/v1/clients/:id',
    { config: { scope: 'admin' }, schema: { tags: ['auth'], summary: 'Revoke an OAuth client; its tokens stop working at once', params: IdParams, response: { 200: Type.Object({ id: Type.String(), revoked: Type.Boolean() }), ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const pr = principalOf(req);
      if (!(await p.credentials.revokeClient(pr.accountId, id, auditContext(req), pr.mode))) throw new AppError('NOT_FOUND', `No active OAuth client ${id} in this account.`, { id });
      return { id, revoked: true };
    },
  );
}
