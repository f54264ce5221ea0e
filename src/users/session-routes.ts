// /v1/session (interfaces §4, CONTRACT §10): sign in, see who is signed in, switch between test
// and live data, sign out. And /v1/users (owner only) with the signed-in person's own routes
// under /v1/users/me: password, TOTP enrolment.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { auditContext } from '../audit/audit-http.ts';
import type { Mode } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { ROLES } from './roles.ts';
import { SESSION_COOKIE, type SessionAuth } from './session-service.ts';

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const tags = ['people'];
const RoleSchema = Type.String({ enum: [...ROLES] });

const SessionBody = Type.Object({
  user: Type.Object({ id: Type.String(), email: Type.String(), role: RoleSchema, account_id: Type.String(), totp_enabled: Type.Boolean() }),
  account: Type.Object({ id: Type.String(), name: Type.String() }),
  mode: Type.String({ enum: ['live', 'test'] }),
  scopes: Type.Array(Type.String()),
  bodies: Type.Boolean({ description: 'Whether this person may read message bodies (false for the viewer role).' }),
  permissions: Type.Array(Type.String(), { description: 'What the role may do beyond its scopes, e.g. conversations:reply (an agent replies in the inbox).' }),
  csrf_token: Type.String({ description: 'Send it as X-CSRF-Token on every POST, PUT, PATCH and DELETE made with the session cookie.' }),
  expires_at: Type.String({ format: 'date-time', description: 'When the session ends unless it is used before (idle expiry), or at the latest (absolute expiry).' }),
});

export const UserSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('user'),
  account_id: Type.String(),
  email: Type.String(),
  role: RoleSchema,
  totp_enabled: Type.Boolean(),
  disabled: Type.Boolean(),
  created_by: Nullable(Type.String({ description: 'The user, API key or OAuth client that created it, or cli.' })),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

function cookieOptions(p: Platform) {
  return {
    httpOnly: true,
    sameSite: 'strict' as const,
    path: '/',
    secure: p.config.SWITCHBOARD_PUBLIC_URL?.startsWith('https:') === true,
  };
}

function sessionOf(req: FastifyRequest): SessionAuth & { token: string } {
  if (!req.session) throw new AppError('AUTH_FAILED', 'Not signed in: POST /v1/session first.');
  return req.session;
}

export function sessionRoutes(app: FastifyInstance, p: Platform): void {
  app.post(
    '/v1/session',
    {
      schema: {
        tags,
        summary: 'Sign in: sets the sb_session cookie (HttpOnly, SameSite=Strict)',
        description:
          'A wrong email or password answers 401 AUTH_FAILED, the same for both. With TOTP enabled and no or a wrong code: 401 AUTH_FAILED with details.totp_required. Repeated failures lock the email and the address out for a while (429 RATE_LIMITED with Retry-After). The session starts in live mode unless mode says test.',
        security: [],
        body: Type.Object({
          email: Type.String({ maxLength: 320 }),
          password: Type.String({ maxLength: 1024 }),
          totp: Type.Optional(Type.String({ maxLength: 12 })),
          account_id: Type.Optional(Type.String({ maxLength: 100, description: 'When one email belongs to people in several accounts.' })),
          mode: Type.Optional(Type.String({ enum: ['live', 'test'] })),
        }),
        response: { 200: SessionBody, ...errorResponses(400, 401, 429) },
      },
    },
    async (req, reply) => {
      // JSON only: a form on another site cannot send it without a CORS preflight, so no page
      // can sign a visitor in to an account of its choosing (login CSRF).
      if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) throw new AppError('VALIDATION_ERROR', 'Send the sign-in as application/json.', { field: 'content-type' });
      const body = req.body as { email: string; password: string; totp?: string; account_id?: string; mode?: Mode };
      const { token, session, user } = await p.sessions.signIn(body, { ip: req.ip, userAgent: req.headers['user-agent'] ?? null });
      reply.header('cache-control', 'no-store');
      reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions(p), maxAge: p.config.SWITCHBOARD_SESSION_MAX_S });
      const auth = { session, user, principal: p.sessions.principal(session, user) };
      return p.sessions.view(auth, token);
    },
  );

  app.get(
    '/v1/session',
    { config: { sessionOnly: true }, schema: { tags, summary: 'The signed-in person, their account, role, mode and CSRF token', security: [], response: { 200: SessionBody, ...errorResponses(401) } } },
    async (req, reply) => {
      const s = sessionOf(req);
      reply.header('cache-control', 'no-store');
      return p.sessions.view(s, s.token);
    },
  );

  app.patch(
    '/v1/session',
    {
      config: { sessionOnly: true },
      schema: { tags, summary: 'Switch the data the session sees: test or live', security: [], body: Type.Object({ mode: Type.String({ enum: ['live', 'test'] }) }), response: { 200: SessionBody, ...errorResponses(400, 401, 403) } },
    },
    async (req) => {
      const s = sessionOf(req);
      const next = await p.sessions.setMode(s, (req.body as { mode: Mode }).mode, req.ip);
      return p.sessions.view(next, s.token);
    },
  );

  app.delete(
    '/v1/session',
    { config: { sessionOnly: true }, schema: { tags, summary: 'Sign out: ends the session and clears the cookie', security: [], response: { 204: Type.Null(), ...errorResponses(401, 403) } } },
    async (req, reply: FastifyReply) => {
      await p.sessions.signOut(sessionOf(req), req.ip);
      reply.clearCookie(SESSION_COOKIE, cookieOptions(p));
      return reply.status(204).send();
    },
  );

  const usersConfig = { scope: 'admin' as const, manageUsers: true };
  app.get(
    '/v1/users',
    { config: usersConfig, schema: { tags, summary: "The account's people (owner only)", response: { 200: Type.Object({ data: Type.Array(UserSchema) }), ...errorResponses(401, 403) } } },
    async (req) => ({ data: await p.users.list(principalOf(req).accountId) }),
  );

  app.post(
    '/v1/users',
    {
      config: usersConfig,
      schema: {
        tags,
        summary: 'Add a person to the account (owner only)',
        body: Type.Object({ email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024, description: 'At least 12 characters.' }), role: RoleSchema }),
        response: { 201: UserSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const pr = principalOf(req);
      return reply.status(201).send(await p.users.create(pr.accountId, req.body as { email: string; password: string; role: string }, auditContext(req)));
    },
  );

  app.patch(
    '/v1/users/:id',
    {
      config: usersConfig,
      schema: {
        tags,
        summary: "Change a person's role, email or password, disable them, or reset their TOTP (owner only)",
        description: 'Disabling a person or setting a new password ends their sessions at once. The last active owner cannot be demoted or disabled.',
        params: IdParams,
        body: Type.Object({
          role: Type.Optional(RoleSchema),
          email: Type.Optional(Type.String({ maxLength: 320 })),
          password: Type.Optional(Type.String({ maxLength: 1024 })),
          disabled: Type.Optional(Type.Boolean()),
          totp_enabled: Type.Optional(Type.Literal(false, { description: 'false removes the second factor (a lost authenticator).' })),
        }),
        response: { 200: UserSchema, ...errorResponses(400, 401, 403, 404) },
      },
    },
    async (req) => p.users.update(principalOf(req).accountId, (req.params as { id: string }).id, req.body as Record<string, unknown>, auditContext(req)),
  );

  app.delete(
    '/v1/users/:id',
    { config: usersConfig, schema: { tags, summary: 'Remove a person from the account (owner only; not the last owner)', params: IdParams, response: { 200: Type.Object({ id: Type.String(), deleted: Type.Boolean() }), ...errorResponses(400, 401, 403, 404) } } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      await p.users.remove(principalOf(req).accountId, id, auditContext(req));
      return { id, deleted: true };
    },
  );

  app.post(
    '/v1/users/me/password',
    {
      config: { sessionOnly: true },
      schema: {
        tags,
        summary: 'Change your own password; every one of your sessions ends, this one too',
        security: [],
        body: Type.Object({ current_password: Type.String({ maxLength: 1024 }), new_password: Type.String({ maxLength: 1024 }) }),
        response: { 204: Type.Null(), ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const s = sessionOf(req);
      const b = req.body as { current_password: string; new_password: string };
      await p.users.changeOwnPassword(s.user.account_id, s.user.id, b.current_password, b.new_password, auditContext(req));
      reply.clearCookie(SESSION_COOKIE, cookieOptions(p));
      return reply.status(204).send();
    },
  );

  app.post(
    '/v1/users/me/totp',
    {
      config: { sessionOnly: true },
      schema: {
        tags,
        summary: 'Start TOTP enrolment: a new secret for an authenticator app',
        description: 'The second factor is on once POST /v1/users/me/totp/verify accepts a code from this secret.',
        security: [],
        response: { 200: Type.Object({ secret: Type.String({ description: 'Base32' }), otpauth_url: Type.String() }), ...errorResponses(401, 403) },
      },
    },
    async (req, reply) => {
      const s = sessionOf(req);
      reply.header('cache-control', 'no-store');
      return p.users.beginTotp(s.user.account_id, s.user.id);
    },
  );

  app.post(
    '/v1/users/me/totp/verify',
    {
      config: { sessionOnly: true },
      schema: { tags, summary: 'Finish TOTP enrolment with a code; sign-in asks for one from then on', security: [], body: Type.Object({ code: Type.String({ maxLength: 12 }) }), response: { 200: UserSchema, ...errorResponses(400, 401, 403) } },
    },
    async (req) => {
      const s = sessionOf(req);
      return p.users.verifyTotp(s.user.account_id, s.user.id, (req.body as { code: string }).code, auditContext(req));
    },
  );
}
