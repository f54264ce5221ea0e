// The scopes a token can hold (CONTRACT §2). `admin` implies every other one.
export const SCOPES = [
  'messages:send',
  'messages:read',
  'contacts:read',
  'contacts:write',
  'consent:write',
  'campaigns:send',
  'workflows:manage',
  'events:send',
  'webhooks:manage',
  'connectors:manage',
  'audit:read',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];
export type Mode = 'test' | 'live';

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

export function hasScope(held: readonly string[], required: Scope): boolean {
  return held.includes('admin') || held.includes(required);
}

/** The identity behind a request: which account, which mode, what it may do. */
export interface Principal {
  accountId: string;
  mode: Mode;
  scopes: string[];
  kind: 'api_key' | 'oauth' | 'twilio';
  credentialId: string;
  /** Whether this principal may read message bodies (interfaces seam 2); absent means yes. */
  bodies?: boolean;
}
