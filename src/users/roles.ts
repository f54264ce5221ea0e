// The roles a person can hold in an account, and what each may do: the one place where a role
// becomes scopes (CONTRACT §2) plus what scopes cannot say (interfaces §3). Every check
// elsewhere reads this table: the auth hook (scopes, `permissions`), the message and
// conversation views (`bodies`), the users API (`manageUsers`).
//
//   owner  — everything, and alone manages the account's people
//   admin  — every scope: keys, OAuth clients, connectors, webhooks, audit; not people
//   sender — sends messages and campaigns, reads messages and contacts
//   agent  — the inbox: reads messages and contacts, replies in a conversation, nothing else
//   viewer — every read scope, never a write, and never a message body
import type { Scope } from '../auth/scopes.ts';

export const ROLES = ['owner', 'admin', 'sender', 'agent', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * Permissions that are not scopes: a route may name one in `config.permission`, and a person
 * whose role holds it passes even without the route's scope.
 */
export type RolePermission = 'conversations:reply';

export interface RoleDefinition {
  scopes: Scope[];
  permissions: RolePermission[];
  /** May read message bodies and media references. */
  bodies: boolean;
  /** May list, invite, change and remove the account's people. */
  manageUsers: boolean;
  description: string;
}

export const ROLE_DEFINITIONS: Record<Role, RoleDefinition> = {
  owner: { scopes: ['admin'], permissions: ['conversations:reply'], bodies: true, manageUsers: true, description: 'Everything, including the account’s people.' },
  admin: { scopes: ['admin'], permissions: ['conversations:reply'], bodies: true, manageUsers: false, description: 'Keys, OAuth clients, connectors, webhooks, audit, and everything a sender does; not people.' },
  sender: {
    scopes: ['messages:send', 'messages:read', 'contacts:read', 'contacts:write', 'campaigns:send', 'events:send'],
    permissions: ['conversations:reply'],
    bodies: true,
    manageUsers: false,
    description: 'Sends messages and campaigns; reads messages and contacts.',
  },
  agent: { scopes: ['messages:read', 'contacts:read'], permissions: ['conversations:reply'], bodies: true, manageUsers: false, description: 'The inbox: reads conversations and replies in them.' },
  viewer: { scopes: ['messages:read', 'contacts:read', 'audit:read'], permissions: [], bodies: false, manageUsers: false, description: 'Reads everything except message bodies; changes nothing.' },
};

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

export const roleScopes = (role: Role): Scope[] => [...ROLE_DEFINITIONS[role].scopes];

export const roleAllows = (role: Role | undefined, permission: RolePermission): boolean => role !== undefined && ROLE_DEFINITIONS[role].permissions.includes(permission);
