// The audit context of an HTTP request: who is acting (from its principal) and from which
// address. `req.ip` is the peer address: trustProxy is off, so behind a reverse proxy every
// entry shows the proxy's address unless the deployment changes that (docs/security.md).
import type { FastifyRequest } from 'fastify';
import { seesBodies } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import type { Storage } from '../storage/database.ts';
import { actorOf, record, type AuditContext } from './audit-service.ts';

export function auditContext(req: FastifyRequest): AuditContext {
  return { actor: req.principal ? actorOf(req.principal) : { type: 'system', id: 'anonymous' }, ip: req.ip ?? null };
}

/**
 * Records that a person (a session) was shown message bodies: which messages, through which
 * view. API keys and OAuth tokens are programs, not people, and are not recorded here; a viewer
 * is shown no body, so nothing is recorded for one either.
 */
export async function recordBodyRead(
  p: { storage: Storage; clock: Clock },
  req: FastifyRequest,
  view: string,
  messageIds: string[],
  target: { type: string; id: string } | null = null,
): Promise<void> {
  const pr = req.principal;
  if (!pr || pr.kind !== 'session' || !seesBodies(pr) || messageIds.length === 0) return;
  await record(p.storage.db, {
    accountId: pr.accountId,
    actor: actorOf(pr),
    ip: req.ip,
    mode: pr.mode,
    action: 'message.body_read',
    target: target ?? (messageIds.length === 1 ? { type: 'message', id: messageIds[0] } : null),
    details: { view, message_ids: messageIds },
    at: p.clock.now(),
  });
}
