// Authentication and permission checks for /v1. A route declares what it needs in its config:
//   config: { scope: 'messages:send' }            — any mode
//   config: { scope: 'messages:send', testOnly }  — the simulator's inject route
//   config: { scope: …, permission: 'conversations:reply' } — or a person whose role holds it
//   config: { scope: 'admin', manageUsers: true } — only a person whose role manages people (owner)
//   config: { sessionOnly: true }                 — only a signed-in person (the session cookie)
// and reads the principal from request.principal.
//
// A request authenticates with `Authorization: Bearer <API key or OAuth token>`, or with the
// dashboard's session cookie (src/users/session-service.ts). With the cookie, a state-changing
// request (POST, PUT, PATCH, DELETE) must carry X-CSRF-Token, or it is refused before the route
// runs, so a refused request changes nothing. Bearer requests need no CSRF token: a page on
// another site cannot set an Authorization header.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CredentialService } from '../auth/credential-service.ts';
import { hasScope, type Principal, type Scope } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';
import { ROLE_DEFINITIONS, roleAllows, type RolePermission } from '../users/roles.ts';
import { SESSION_COOKIE, type SessionAuth, type SessionService } from '../users/session-service.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** The dashboard session behind the request, when it came with the cookie. */
    session: (SessionAuth & { token: string }) | null;
  }
  interface FastifyContextConfig {
    scope?: Scope;
    testOnly?: boolean;
    public?: boolean;
    permission?: RolePermission;
    manageUsers?: boolean;
    sessionOnly?: boolean;
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function installAuth(app: FastifyInstance, credentials: CredentialService, sessions: SessionService): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('session', null);
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config;
    if (!config?.scope && !config?.sessionOnly) return;
    req.principal = { ...(await authenticate(req, credentials, sessions, config.sessionOnly === true)), ip: req.ip };
    if (req.session && STATE_CHANGING.has(req.method)) {
      const given = req.headers['x-csrf-token'];
      if (!(await sessions.checkCsrf(req.session.token, typeof given === 'string' ? given : undefined))) {
        throw new AppError('FORBIDDEN', 'A request signed in with the session cookie must send the X-CSRF-Token header of GET /v1/session.', { reason: 'csrf' });
      }
    }
    const pr = req.principal;
    if (config.manageUsers && !(pr.kind === 'session' && pr.role && ROLE_DEFINITIONS[pr.role].manageUsers)) {
      throw new AppError('FORBIDDEN', 'Only an owner of the account, signed in, manages its people.', { required_role: 'owner' });
    }
    if (config.scope && !hasScope(pr.scopes, config.scope) && !(config.permission && roleAllows(pr.role, config.permission))) {
      throw new AppError('FORBIDDEN', pr.kind === 'session' ? `The ${pr.role} role may not do this (it needs the ${config.scope} scope).` : `This token lacks the ${config.scope} scope.`, {
        required_scope: config.scope,
        ...(pr.role ? { role: pr.role } : {}),
      });
    }
    if (config.testOnly && pr.mode !== 'test') {
      throw new AppError('FORBIDDEN', 'This route is for test-mode tokens only.', { required_mode: 'test' });
    }
  });
}

async function authenticate(req: FastifyRequest, credentials: CredentialService, sessions: SessionService, sessionOnly: boolean): Promise<Principal> {
  const header = req.headers.authorization;
  const cookie = req.cookies?.[SESSION_COOKIE];
  if (sessionOnly || (!header && cookie)) {
    if (!cookie) throw new AppError('AUTH_FAILED', 'Not signed in: POST /v1/session first.');
    const auth = await sessions.authenticate(cookie);
    req.session = { ...auth, token: cookie };
    return auth.principal;
  }
  if (!header) throw new AppError('AUTH_FAILED', 'Missing Authorization header: send Authorization: Bearer <token>, or sign in with POST /v1/session.');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new AppError('AUTH_FAILED', 'Malformed Authorization header: expected Bearer <token>.');
  return credentials.authenticate(m[1]);
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError('AUTH_FAILED', 'Not authenticated.');
  return req.principal;
}
