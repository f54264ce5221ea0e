// The audit context of an HTTP request: who is acting (from its principal) and from which
// address. `req.ip` is the peer address: trustProxy is off, so behind a reverse proxy every
// entry shows the proxy's address unless the deployment changes that (docs/security.md).
import type { FastifyRequest } from 'fastify';
import { actorOf, type AuditContext } from './audit-service.ts';

export function auditContext(req: FastifyRequest): AuditContext {
  return { actor: req.principal ? actorOf(req.principal) : { type: 'system', id: 'anonymous' }, ip: req.ip ?? null };
}
