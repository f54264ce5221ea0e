// Bearer authentication and scope checks for /v1. A route declares what it needs in its config:
//   config: { scope: 'messages:send' }            — any mode
//   config: { scope: 'messages:send', testOnly }  — the simulator's inject route
// and reads the principal from request.principal.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CredentialService } from '../auth/credential-service.ts';
import { hasScope, type Principal, type Scope } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    scope?: Scope;
    testOnly?: boolean;
    public?: boolean;
  }
}

export function installAuth(app: FastifyInstance, credentials: CredentialService): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config;
    if (!config?.scope) return;
    req.principal = await authenticate(req, credentials);
    if (!hasScope(req.principal.scopes, config.scope)) {
      throw new AppError('FORBIDDEN', `This token lacks the ${config.scope} scope.`, { required_scope: config.scope });
    }
    if (config.testOnly && req.principal.mode !== 'test') {
      throw new AppError('FORBIDDEN', 'This route is for test-mode tokens only.', { required_mode: 'test' });
    }
  });
}

async function authenticate(req: FastifyRequest, credentials: CredentialService): Promise<Principal> {
  const header = req.headers.authorization;
  if (!header) throw new AppError('AUTH_FAILED', 'Missing Authorization header: send Authorization: Bearer <token>.');
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new AppError('AUTH_FAILED', 'Malformed Authorization header: expected Bearer <token>.');
  return credentials.authenticate(m[1]);
}

export function principalOf(req: FastifyRequest): Principal {
  if (!req.principal) throw new AppError('AUTH_FAILED', 'Not authenticated.');
  return req.principal;
}
