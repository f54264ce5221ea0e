// Dashboard sessions: sign-in, the session cookie's token, CSRF tokens, test/live mode, sign-out.
//
// Words used here:
//   token      — 256 random bits in the `sb_session` cookie (HttpOnly, SameSite=Strict). Only
//                its SHA-256 is stored, so a copy of the database signs nobody in.
//   idle / absolute expiry — a session ends after SWITCHBOARD_SESSION_IDLE_S without a request,
//                and SWITCHBOARD_SESSION_MAX_S after sign-in whatever happens. `last_seen_at`
//                is written at most once a minute, not on every request.
//   CSRF token — HMAC-SHA256 of the session token under an installation key: one per session,
//                derivable only by the server from the cookie, never stored. A state-changing
//                request with the cookie must echo it in X-CSRF-Token (compared in constant
//                time); a page on another site can neither read it nor set the header.
//   throttle   — sign-in attempts counted per email (cleared by a success) and failures per
//                client address, in a row each (`sign_in_throttle`), so a lockout holds across
//                restarts and processes.
//
// Sign-in never says whether an email exists: an unknown email and a wrong password get the same
// answer, and both pay for one argon2id verification (a dummy hash for the unknown email).
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import { record, type AuditActor } from '../audit/audit-service.ts';
import type { Mode, Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Storage } from '../storage/database.ts';
import type { SessionsTable, UsersTable } from '../storage/schema.ts';
import { getOrCreateSetting } from '../storage/settings.ts';
import { transaction } from '../storage/transactions.ts';
import { dummyHash, verifyPassword } from './passwords.ts';
import { isRole, ROLE_DEFINITIONS, roleScopes, type Role } from './roles.ts';
import { normaliseEmail, toUserView, type UserService } from './user-service.ts';

export const SESSION_COOKIE = 'sb_session';

/** Failed sign-ins allowed per window before a lockout, and how long each lasts. */
export const THROTTLE = {
  windowMs: 15 * 60_000,
  lockMs: 15 * 60_000,
  perEmail: 5,
  perAddress: 30,
};

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');
const TOUCH_EVERY_MS = 60_000;

export interface SessionOptions {
  idleS: number;
  maxS: number;
}

export interface SignInInput {
  email: string;
  password: string;
  totp?: string;
  account_id?: string;
  mode?: Mode;
}

export interface Client {
  ip: string | null;
  userAgent: string | null;
}

export interface SignedIn {
  token: string;
  session: SessionsTable;
  user: UsersTable;
}

export interface SessionAuth {
  principal: Principal;
  session: SessionsTable;
  user: UsersTable;
}

const authFailed = (details: Record<string, unknown> = {}) => new AppError('AUTH_FAILED', 'The email, password or code is not right.', details);

export class SessionService {
  private csrfKey: Buffer | null = null;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private users: UserService,
    private opts: SessionOptions,
  ) {}

  private async key(): Promise<Buffer> {
    this.csrfKey ??= Buffer.from(await getOrCreateSetting(this.storage.db, 'session_csrf_key', () => randomBytes(32).toString('hex')), 'hex');
    return this.csrfKey;
  }

  async csrfToken(token: string): Promise<string> {
    return createHmac('sha256', await this.key()).update(`csrf:${token}`).digest('base64url');
  }

  async checkCsrf(token: string, given: string | undefined): Promise<boolean> {
    if (!given) return false;
    const expected = Buffer.from(await this.csrfToken(token));
    const got = Buffer.from(given);
    return got.length === expected.length && timingSafeEqual(got, expected);
  }

  /**
   * Counts one attempt against `key`: the count in the current window, and how long the key is
   * still locked out (0: not locked).
   * The count is one atomic upsert, so parallel attempts cannot all read the same count and
   * slip past the limit together; a window that has run out starts again at 1.
   */
  private async bump(key: string): Promise<{ count: number; lockedMs: number }> {
    const now = this.clock.now();
    const stale = sql<boolean>`sign_in_throttle.window_started_at <= ${now - THROTTLE.windowMs} and coalesce(sign_in_throttle.locked_until, 0) <= ${now}`;
    const row = await this.storage.db
      .insertInto('sign_in_throttle')
      .values({ key, failures: 1, window_started_at: now, locked_until: null })
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          failures: sql<number>`case when ${stale} then 1 else sign_in_throttle.failures + 1 end`,
          window_started_at: sql<number>`case when ${stale} then ${now} else sign_in_throttle.window_started_at end`,
        }),
      )
      .returning(['failures', 'locked_until'])
      .executeTakeFirstOrThrow();
    return { count: row.failures, lockedMs: Math.max(0, Number(row.locked_until ?? 0) - now) };
  }

  private async lock(key: string): Promise<number> {
    const now = this.clock.now();
    await this.storage.db.updateTable('sign_in_throttle').set({ locked_until: now + THROTTLE.lockMs, window_started_at: now, failures: 0 }).where('key', '=', key).execute();
    return THROTTLE.lockMs;
  }

  /** A failed sign-in from `key`'s address; the limit-th locks the address out. */
  private async failedFrom(key: string): Promise<void> {
    if ((await this.bump(key)).count >= THROTTLE.perAddress) await this.lock(key);
  }

  private async lockedFor(key: string): Promise<number> {
    const row = await this.storage.db.selectFrom('sign_in_throttle').select('locked_until').where('key', '=', key).executeTakeFirst();
    return Math.max(0, Number(row?.locked_until ?? 0) - this.clock.now());
  }

  /**
   * POST /v1/session. An email may belong to people in several accounts: the password picks
   * the one (oldest first), or `account_id` names it.
   */
  async signIn(input: SignInInput, client: Client): Promise<SignedIn> {
    const email = normaliseEmail(String(input.email));
    const emailKey = `email:${email}`;
    const addressKey = `ip:${client.ip ?? 'unknown'}`;
    const now = this.clock.now();
    const audit = (accountId: string | null, actor: AuditActor, action: string, details: Record<string, unknown>, target?: { type: string; id: string }) =>
      record(this.storage.db, { accountId, actor, ip: client.ip, action, target, details, at: this.clock.now() });
    // The email's count goes up before the password is checked (and is cleared by a success),
    // so a burst of parallel guesses gets `perEmail` tries, not one each. The address counts
    // failures only, so an office behind one address can sign in all morning.
    const tries = await this.bump(emailKey);
    const wait = Math.max(await this.lockedFor(addressKey), tries.lockedMs, tries.count > THROTTLE.perEmail ? await this.lock(emailKey) : 0);
    if (wait > 0) {
      await audit(null, { type: 'system', id: 'sign-in' }, 'session.failed', { email: String(input.email).slice(0, 320), reason: 'locked_out' });
      const retry = Math.ceil(wait / 1000);
      throw new AppError('RATE_LIMITED', `Too many failed sign-ins: try again in ${retry} s.`, { retry_after_s: retry }, { 'retry-after': String(retry) });
    }

    let query = this.storage.db.selectFrom('users').selectAll().where('email_norm', '=', email).where('disabled_at', 'is', null);
    if (input.account_id !== undefined) query = query.where('account_id', '=', input.account_id);
    const candidates = await query.orderBy('created_at').limit(20).execute();
    let user: UsersTable | null = null;
    if (candidates.length === 0) await verifyPassword(await dummyHash(), input.password);
    for (const c of candidates) {
      if (await verifyPassword(c.password_hash, input.password)) {
        user = c;
        break;
      }
    }
    if (!user) {
      await this.failedFrom(addressKey);
      const known = candidates[0];
      await audit(known?.account_id ?? null, known ? { type: 'user', id: known.id } : { type: 'system', id: 'sign-in' }, 'session.failed', { email: String(input.email).slice(0, 320), reason: 'bad_credentials' });
      throw authFailed();
    }
    if (user.totp_secret) {
      if (input.totp === undefined || input.totp === '') {
        await audit(user.account_id, { type: 'user', id: user.id }, 'session.failed', { email: user.email, reason: 'totp_required' });
        throw authFailed({ totp_required: true });
      }
      if (!(await this.users.consumeTotp(user, input.totp))) {
        await this.failedFrom(addressKey);
        await audit(user.account_id, { type: 'user', id: user.id }, 'session.failed', { email: user.email, reason: 'totp_invalid' });
        throw authFailed({ totp_required: true });
      }
    }

    const token = `sbs_${randomBytes(32).toString('base64url')}`;
    const session: SessionsTable = {
      id: newId('sess', now),
      token_hash: hashToken(token),
      user_id: user.id,
      account_id: user.account_id,
      // People work on live data (the inbox, real sends); PATCH /v1/session switches to test.
      mode: input.mode ?? 'live',
      ip: client.ip,
      user_agent: client.userAgent?.slice(0, 500) ?? null,
      created_at: now,
      last_seen_at: now,
      expires_at: now + this.opts.maxS * 1000,
      revoked_at: null,
    };
    const signedIn = user;
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('sessions').values(session).execute();
      await tx.deleteFrom('sign_in_throttle').where('key', '=', emailKey).execute();
      await record(tx, { accountId: signedIn.account_id, actor: { type: 'user', id: signedIn.id }, ip: client.ip, action: 'session.created', target: { type: 'session', id: session.id }, details: { email: signedIn.email, totp: signedIn.totp_secret !== null }, at: now });
    });
    return { token, session, user };
  }

  /** The session behind a cookie's token, or AUTH_FAILED: unknown, revoked, idle too long, past its end, or its user disabled. */
  async authenticate(token: string): Promise<SessionAuth> {
    const now = this.clock.now();
    const session = await this.storage.read.selectFrom('sessions').selectAll().where('token_hash', '=', hashToken(token)).executeTakeFirst();
    if (!session || session.revoked_at !== null) throw new AppError('AUTH_FAILED', 'Not signed in: the session has ended. Sign in again.');
    if (now >= Number(session.expires_at) || now >= Number(session.last_seen_at) + this.opts.idleS * 1000) throw new AppError('AUTH_FAILED', 'The session has expired. Sign in again.');
    const user = await this.storage.read.selectFrom('users').selectAll().where('id', '=', session.user_id).executeTakeFirst();
    if (!user || user.disabled_at !== null || Number(user.password_changed_at) > Number(session.created_at)) throw new AppError('AUTH_FAILED', 'Not signed in: the session has ended. Sign in again.');
    if (now - Number(session.last_seen_at) >= TOUCH_EVERY_MS) {
      await this.storage.db.updateTable('sessions').set({ last_seen_at: now }).where('id', '=', session.id).execute();
    }
    return { principal: this.principal(session, user), session, user };
  }

  principal(session: SessionsTable, user: UsersTable): Principal {
    const role = user.role as Role;
    return {
      accountId: user.account_id,
      mode: session.mode as Mode,
      scopes: roleScopes(role),
      kind: 'session',
      credentialId: session.id,
      userId: user.id,
      role,
      bodies: ROLE_DEFINITIONS[role].bodies,
    };
  }

  async setMode(auth: SessionAuth, mode: Mode, ip: string | null): Promise<SessionAuth> {
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('sessions').set({ mode, last_seen_at: now }).where('id', '=', auth.session.id).execute();
      if (mode !== auth.session.mode) await record(tx, { accountId: auth.user.account_id, actor: { type: 'user', id: auth.user.id }, ip, action: 'session.mode_changed', target: { type: 'session', id: auth.session.id }, details: { mode }, at: now });
    });
    const session = { ...auth.session, mode, last_seen_at: now };
    return { principal: this.principal(session, auth.user), session, user: auth.user };
  }

  async signOut(auth: SessionAuth, ip: string | null): Promise<void> {
    const now = this.clock.now();
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('sessions').set({ revoked_at: now }).where('id', '=', auth.session.id).execute();
      await record(tx, { accountId: auth.user.account_id, actor: { type: 'user', id: auth.user.id }, ip, action: 'session.revoked', target: { type: 'session', id: auth.session.id }, details: { reason: 'sign_out' }, at: now });
    });
  }

  /** The body of POST and GET /v1/session (interfaces §4). */
  async view(auth: SessionAuth, token: string) {
    const account = await this.storage.read.selectFrom('accounts').select(['id', 'name']).where('id', '=', auth.user.account_id).executeTakeFirst();
    const u = toUserView(auth.user);
    return {
      user: { id: u.id, email: u.email, role: u.role, account_id: u.account_id, totp_enabled: u.totp_enabled },
      account: { id: auth.user.account_id, name: account?.name ?? '' },
      mode: auth.principal.mode,
      scopes: auth.principal.scopes,
      bodies: auth.principal.bodies !== false,
      // What the role may do beyond scopes (roles.ts), so the dashboard offers only that.
      permissions: isRole(u.role) ? [...ROLE_DEFINITIONS[u.role].permissions] : [],
      csrf_token: await this.csrfToken(token),
      expires_at: new Date(Math.min(Number(auth.session.expires_at), Number(auth.session.last_seen_at) + this.opts.idleS * 1000)).toISOString(),
    };
  }

  /** Old throttle rows and long-ended sessions: nothing reads them any more. */
  async sweep(): Promise<void> {
    const now = this.clock.now();
    await this.storage.db
      .deleteFrom('sign_in_throttle')
      .where('window_started_at', '<', now - 2 * THROTTLE.windowMs)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
      .execute();
    await this.storage.db.deleteFrom('sessions').where('expires_at', '<', now - 30 * 86400_000).execute();
  }
}
