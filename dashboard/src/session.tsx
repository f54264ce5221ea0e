import { createContext, useContext } from 'react';
import type { Session } from './api.ts';

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in page');
  return s;
}

/** Whether the signed-in role holds a scope (admin holds every one), as the API checks it. */
export function can(s: Session, scope: string): boolean {
  return s.scopes.includes('admin') || s.scopes.includes(scope);
}

/** Replying in a conversation is a role permission, not a scope (src/users/roles.ts). */
export function canReply(s: Session): boolean {
  return (s.permissions ?? []).includes('conversations:reply') || can(s, 'messages:send');
}
