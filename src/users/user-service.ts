// People of an account (CONTRACT §10): create, list, change and remove users, their passwords
// and their TOTP second factor. Every change is audited in its own transaction. Sessions live in
// session-service.ts; this module revokes them when a user is disabled, removed or given a new
// password.
//
// The account keeps at least one active owner: demoting, disabling or removing the last one is
// refused. On PostgreSQL the account row is locked first, so two owners demoting each other at
// the same moment cannot both succeed.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { Secret, TOTP } from 'otpauth';
import { record, type AuditContext } from '../audit/audit-service.ts';
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Executor, Storage, Tx } from '../storage/database.ts';
import type { UsersTable } from '../storage/schema.ts';
import { transaction } from '../storage/transactions.ts';
import { checkPasswordRules, hashPassword, verifyPassword } from './passwords.ts';
import { ROLES, isRole, type Role } from './roles.ts';

export interface UserView {
  id: string;
  object: 'user';
  account_id: string;
  email: string;
  role: Role;
  totp_enabled: boolean;
  disabled: boolean;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

const iso = (ms: number) => new Date(Number(ms)).toISOString();

export function toUserView(u: UsersTable): UserView {
  return {
    id: u.id,
    object: 'user',
    account_id: u.account_id,
    email: u.email,
    role: u.role as Role,
    totp_enabled: u.totp_secret !== null,
    disabled: u.disabled_at !== null,
    created_by: u.created_by,
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
  };
}

export const normaliseEmail = (email: string) => email.trim().toLowerCase();

function checkEmail(email: unknown): string {
  if (typeof email !== 'string') throw validation('email', 'email must be a string.');
  const e = email.trim();
  if (e.length > 320 || !/^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$/.test(e)) throw validation('email', 'email must be an email address.');
  return e;
}

function checkRole(role: unknown): Role {
  if (!isRole(role)) throw validation('role', `role must be one of ${ROLES.join(', ')}.`, { allowed: ROLES });
  return role;
}

/** The TOTP parameters every authenticator app understands: SHA-1, 6 digits, 30 s. */
export const totpFor = (secret: Secret, email: string) => new TOTP({ issuer: 'Switchboard', label: email, algorithm: 'SHA1', digits: 6, period: 30, secret });

export interface UserPatch {
  role?: unknown;
  disabled?: unknown;
  password?: unknown;
  email?: unknown;
  totp_enabled?: unknown;
}

export class UserService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async create(accountId: string, input: { email: unknown; password: unknown; role: unknown }, ctx: AuditContext): Promise<UserView> {
    const email = checkEmail(input.email);
    const password = checkPasswordRules(input.password);
    const role = checkRole(input.role);
    const passwordHash = await hashPassword(password);
    const now = this.clock.now();
    const row: UsersTable = {
      id: newId('user', now),
      account_id: accountId,
      email,
      email_norm: normaliseEmail(email),
      password_hash: passwordHash,
      role,
      totp_secret: null,
      totp_pending_secret: null,
      totp_last_step: null,
      disabled_at: null,
      created_by: ctx.actor.id,
      created_at: now,
      updated_at: now,
      password_changed_at: now,
    };
    await transaction(this.storage.db, async (tx) => {
      const taken = await tx.selectFrom('users').select('id').where('account_id', '=', accountId).where('email_norm', '=', row.email_norm).executeTakeFirst();
      if (taken) throw validation('email', 'A user with this email already exists in this account.', { reason: 'taken' });
      await tx.insertInto('users').values(row).execute();
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, action: 'user.created', target: { type: 'user', id: row.id }, details: { email, role }, at: now });
    });
    return toUserView(row);
  }

  /** The first start's owner of the default account, with a generated password shown once. */
  async createFirstOwner(accountId: string): Promise<{ user: UserView; email: string; password: string }> {
    const email = 'owner@switchboard.local';
    const password = randomBytes(18).toString('base64url');
    const user = await this.create(accountId, { email, password, role: 'owner' }, { actor: { type: 'system', id: 'first-start' }, ip: null });
    return { user, email, password };
  }

  async list(accountId: string): Promise<UserView[]> {
    const rows = await this.storage.db.selectFrom('users').selectAll().where('account_id', '=', accountId).orderBy('created_at').orderBy('id').execute();
    return rows.map(toUserView);
  }

  async row(accountId: string, id: string, db: Executor = this.storage.db): Promise<UsersTable> {
    const u = await db.selectFrom('users').selectAll().where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    if (!u) throw new AppError('NOT_FOUND', `No user ${id} in this account.`, { id });
    return u;
  }

  async get(accountId: string, id: string): Promise<UserView> {
    return toUserView(await this.row(accountId, id));
  }

  /** Serialises changes to an account's people (PostgreSQL; SQLite writes one at a time anyway). */
  private async lockAccount(tx: Tx, accountId: string): Promise<void> {
    if (this.storage.dialect.name === 'postgres') await sql`select id from accounts where id = ${accountId} for update`.execute(tx);
  }

  private async assertAnOwnerRemains(tx: Tx, accountId: string): Promise<void> {
    const owners = await tx.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).where('account_id', '=', accountId).where('role', '=', 'owner').where('disabled_at', 'is', null).executeTakeFirstOrThrow();
    if (Number(owners.n) === 0) throw validation('role', 'An account keeps at least one active owner: make another user owner first.', { reason: 'last_owner' });
  }

  async update(accountId: string, id: string, patch: UserPatch, ctx: AuditContext): Promise<UserView> {
    const changes: Partial<UsersTable> = {};
    const details: Record<string, unknown> = {};
    if (patch.role !== undefined) changes.role = details.role = checkRole(patch.role);
    if (patch.disabled !== undefined) {
      if (typeof patch.disabled !== 'boolean') throw validation('disabled', 'disabled must be true or false.');
      details.disabled = patch.disabled;
    }
    if (patch.email !== undefined) {
      changes.email = details.email = checkEmail(patch.email);
      changes.email_norm = normaliseEmail(changes.email);
    }
    if (patch.totp_enabled !== undefined) {
      if (patch.totp_enabled !== false) throw validation('totp_enabled', 'totp_enabled can only be set to false here (a lost authenticator); the user enrols again with POST /v1/users/me/totp.');
      changes.totp_secret = null;
      changes.totp_pending_secret = null;
      details.totp_enabled = false;
    }
    if (patch.password !== undefined) {
      changes.password_hash = await hashPassword(checkPasswordRules(patch.password));
      details.password_changed = true;
    }
    if (Object.keys(details).length === 0) throw validation('body', 'Nothing to change: send role, disabled, email, password or totp_enabled.');
    const now = this.clock.now();
    const updated = await transaction(this.storage.db, async (tx) => {
      await this.lockAccount(tx, accountId);
      const before = await this.row(accountId, id, tx);
      if (patch.disabled !== undefined) changes.disabled_at = patch.disabled ? (before.disabled_at ?? now) : null;
      if (changes.email_norm && changes.email_norm !== before.email_norm) {
        const taken = await tx.selectFrom('users').select('id').where('account_id', '=', accountId).where('email_norm', '=', changes.email_norm).executeTakeFirst();
        if (taken) throw validation('email', 'A user with this email already exists in this account.', { reason: 'taken' });
      }
      if (changes.password_hash) changes.password_changed_at = now;
      await tx.updateTable('users').set({ ...changes, updated_at: now }).where('id', '=', id).execute();
      await this.assertAnOwnerRemains(tx, accountId);
      if (patch.disabled === true || changes.password_hash) await this.revokeSessions(tx, id, now);
      if (changes.role && changes.role !== before.role) details.previous_role = before.role;
      const action = changes.role && changes.role !== before.role ? 'user.role_changed' : 'user.updated';
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, action, target: { type: 'user', id }, details, at: now });
      return this.row(accountId, id, tx);
    });
    return toUserView(updated);
  }

  async remove(accountId: string, id: string, ctx: AuditContext): Promise<void> {
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await this.lockAccount(tx, accountId);
      const before = await this.row(accountId, id, tx);
      await tx.deleteFrom('sessions').where('user_id', '=', id).execute();
      await tx.deleteFrom('users').where('id', '=', id).execute();
      await this.assertAnOwnerRemains(tx, accountId);
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, action: 'user.removed', target: { type: 'user', id }, details: { email: before.email, role: before.role }, at: now });
    });
  }

  /** A person changes their own password: the current one is asked for, every session ends. */
  async changeOwnPassword(accountId: string, id: string, current: unknown, next: unknown, ctx: AuditContext): Promise<void> {
    const user = await this.row(accountId, id);
    // 400, not 401: the session is fine, and a 401 would tell the dashboard to sign in again.
    if (typeof current !== 'string' || !(await verifyPassword(user.password_hash, current))) throw validation('current_password', 'The current password is not right.');
    const passwordHash = await hashPassword(checkPasswordRules(next, 'new_password'));
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('users').set({ password_hash: passwordHash, password_changed_at: now, updated_at: now }).where('id', '=', id).execute();
      await this.revokeSessions(tx, id, now);
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, action: 'user.password_changed', target: { type: 'user', id }, at: now });
    });
  }

  async revokeSessions(tx: Executor, userId: string, now: number): Promise<void> {
    await tx.updateTable('sessions').set({ revoked_at: now }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
  }

  /** Starts TOTP enrolment: a new secret, kept pending until a code from it is verified. */
  async beginTotp(accountId: string, id: string): Promise<{ secret: string; otpauth_url: string }> {
    const user = await this.row(accountId, id);
    const secret = new Secret({ size: 20 });
    await this.storage.db.updateTable('users').set({ totp_pending_secret: secret.base32, updated_at: this.clock.now() }).where('id', '=', id).execute();
    return { secret: secret.base32, otpauth_url: totpFor(secret, user.email).toString() };
  }

  /** Completes enrolment with a code from the pending secret; from then on sign-in asks for one. */
  async verifyTotp(accountId: string, id: string, code: unknown, ctx: AuditContext): Promise<UserView> {
    const user = await this.row(accountId, id);
    if (!user.totp_pending_secret) throw validation('code', 'No TOTP enrolment is under way: start one with POST /v1/users/me/totp.');
    const step = this.totpStep(user.totp_pending_secret, user.email, code);
    if (step === null) throw validation('code', 'That code is not right for the new secret; check the authenticator’s clock and try the current code.', { reason: 'totp_invalid' });
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('users').set({ totp_secret: user.totp_pending_secret, totp_pending_secret: null, totp_last_step: step, updated_at: now }).where('id', '=', id).execute();
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, action: 'user.totp_enabled', target: { type: 'user', id }, at: now });
    });
    return this.get(accountId, id);
  }

  /** The 30 s step a code belongs to (the current one, or one either side), or null. */
  totpStep(base32: string, email: string, code: unknown): number | null {
    if (typeof code !== 'string' || !/^\d{6}$/.test(code.trim())) return null;
    const now = this.clock.now();
    const delta = totpFor(Secret.fromBase32(base32), email).validate({ token: code.trim(), timestamp: now, window: 1 });
    return delta === null ? null : Math.floor(now / 30_000) + delta;
  }

  /**
   * Accepts a sign-in code once: the step must be later than the last one accepted. The
   * conditional update makes two requests with the same code race for one row, and one loses.
   */
  async consumeTotp(user: UsersTable, code: unknown): Promise<boolean> {
    if (!user.totp_secret) return true;
    const step = this.totpStep(user.totp_secret, user.email, code);
    if (step === null) return false;
    const res = await this.storage.db
      .updateTable('users')
      .set({ totp_last_step: step })
      .where('id', '=', user.id)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    return Number(res.numUpdatedRows) === 1;
  }
}
