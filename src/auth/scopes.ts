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
  /** `session`: a person signed in to the dashboard (src/users); `twilio`: the Twilio-compatible API. */
  kind: 'api_key' | 'oauth' | 'session' | 'twilio';
  /** The API key, OAuth client or session id. */
  credentialId: string;
  /** For a person (kind `session`): the user and their role in the account (src/users/roles.ts). */
  userId?: string;
  role?: 'owner' | 'admin' | 'sender' | 'agent' | 'viewer';
  /**
   * Whether this principal may read message bodies (and media references). False for the
   * `viewer` role; absent means true (API keys, OAuth tokens). Every view that shows a body
   * checks `principal.bodies !== false`.
   */
  bodies?: boolean;
  /** The client's address, for the audit log (set by the HTTP auth hook; `req.ip`). */
  ip?: string | null;
}

/** Whether `principal` may read message bodies: every view that shows one asks this. */
export const seesBodies = (principal: Pick<Principal, 'bodies'>): boolean => principal.bodies !== false;
