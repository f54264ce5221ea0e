// API keys and OAuth 2.0 clients. Secrets are random, shown once, and stored only as SHA-256
// hashes: they carry 192 bits of entropy, so a fast hash is enough (a slow one is for passwords).
// Access tokens are short-lived HS256 JWTs; revoking a client makes its tokens fail at once,
// because verification checks the client row as well as the signature.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId, randomToken } from '../ids.ts';
import type { Storage } from '../storage/database.ts';
import { getOrCreateSetting, getSetting } from '../storage/settings.ts';
import { transaction } from '../storage/transactions.ts';
import { CLI_ACTOR, record, type AuditContext } from '../audit/audit-service.ts';
import { SCOPES, hasScope, isScope, type Mode, type Principal, type Scope } from './scopes.ts';

export const hashSecret = (secret: string) => createHash('sha256').update(secret).digest('hex');

export interface CreatedKey {
  id: string;
  account_id: string;
  name: string | null;
  mode: Mode;
  scopes: string[];
  secret: string;
  created_at: string;
  created_by: string | null;
}

export function parseScopes(input: unknown, field = 'scopes'): Scope[] {
  const list = typeof input === 'string' ? input.split(/[\s,]+/).filter(Boolean) : input;
  if (!Array.isArray(list) || list.length === 0) throw validation(field, `${field} must name at least one scope.`, { allowed: SCOPES });
  for (const s of list) {
    if (typeof s !== 'string' || !isScope(s)) throw validation(field, `Unknown scope ${JSON.stringify(s)}.`, { allowed: SCOPES });
  }
  return [...new Set(list as Scope[])];
}

export function parseMode(input: unknown): Mode {
  if (input === 'test' || input === 'live') return input;
  throw validation('mode', 'mode must be "test" or "live".');
}

const AUTH = (message: string) => new AppError('AUTH_FAILED', message);

export class CredentialService {
  private jwtKey: Uint8Array | null = null;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private tokenTtlS: number,
  ) {}

  /** The HS256 key; made on the first token issued. Verifying never makes it (a refused request writes nothing). */
  private async signingKey(create = true): Promise<Uint8Array | null> {
    if (!this.jwtKey) {
      const hex = create
        ? await getOrCreateSetting(this.storage.db, 'oauth_signing_key', () => randomBytes(32).toString('hex'))
        : await getSetting(this.storage.read, 'oauth_signing_key');
      if (hex === undefined) return null;
      this.jwtKey = Buffer.from(hex, 'hex');
    }
    return this.jwtKey;
  }

  /**
   * `ctx` says who creates it (recorded as `created_by` and in the audit log, in the same
   * transaction); without one, the CLI.
   */
  async createKey(accountId: string, opts: { scopes: Scope[]; mode: Mode; name?: string | null }, ctx: AuditContext = { actor: CLI_ACTOR, ip: null }): Promise<CreatedKey> {
    const secret = `sb_${opts.mode}_${randomToken(24)}`;
    const now = this.clock.now();
    const row = {
      id: newId('key', now),
      account_id: accountId,
      name: opts.name ?? null,
      mode: opts.mode,
      scopes: JSON.stringify(opts.scopes),
      secret_hash: hashSecret(secret),
      prefix: secret.slice(0, 12),
      created_at: now,
      revoked_at: null,
      last_used_at: null,
      created_by: ctx.actor.id,
    };
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('api_keys').values(row).execute();
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, mode: opts.mode, action: 'key.created', target: { type: 'api_key', id: row.id }, details: { name: row.name, scopes: opts.scopes, prefix: row.prefix }, at: now });
    });
    return { id: row.id, account_id: accountId, name: row.name, mode: opts.mode, scopes: opts.scopes, secret, created_at: new Date(now).toISOString(), created_by: row.created_by };
  }

  /** With a mode (the API), only that mode's keys: a test token never sees live credentials. */
  async listKeys(accountId: string, mode?: Mode) {
    let q = this.storage.db.selectFrom('api_keys').selectAll().where('account_id', '=', accountId);
    if (mode) q = q.where('mode', '=', mode);
    const rows = await q.orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({
      id: r.id,
      name: r.name,
      mode: r.mode,
      scopes: JSON.parse(r.scopes) as string[],
      prefix: r.prefix,
      created_at: new Date(r.created_at).toISOString(),
      revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
      created_by: r.created_by,
    }));
  }

  /** A key of another mode is not found, as with every object (CONTRACT §2). */
  revokeKey(accountId: string, id: string, ctx: AuditContext = { actor: CLI_ACTOR, ip: null }, mode?: Mode): Promise<boolean> {
    return this.revoke('api_keys', accountId, id, ctx, mode);
  }

  /** Revocation takes effect at once: authentication reads the row on every request. */
  private async revoke(table: 'api_keys' | 'oauth_clients', accountId: string, id: string, ctx: AuditContext, mode?: Mode): Promise<boolean> {
    const now = this.clock.now();
    return transaction(this.storage.db, async (tx) => {
      let q = tx.updateTable(table).set({ revoked_at: now }).where('id', '=', id).where('account_id', '=', accountId).where('revoked_at', 'is', null);
      if (mode) q = q.where('mode', '=', mode);
      const res = await q.returning(['mode']).executeTakeFirst();
      if (!res) return false;
      const kind = table === 'api_keys' ? 'key' : 'client';
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, mode: res.mode, action: `${kind}.revoked`, target: { type: table === 'api_keys' ? 'api_key' : 'oauth_client', id }, at: now });
      return true;
    });
  }

  async createClient(accountId: string, opts: { scopes: Scope[]; mode: Mode; name?: string | null }, ctx: AuditContext = { actor: CLI_ACTOR, ip: null }) {
    const secret = `sbcs_${randomToken(32)}`;
    const now = this.clock.now();
    const id = newId(`client_${opts.mode}`, now);
    await transaction(this.storage.db, async (tx) => {
      await tx
        .insertInto('oauth_clients')
        .values({ id, account_id: accountId, name: opts.name ?? null, mode: opts.mode, scopes: JSON.stringify(opts.scopes), secret_hash: hashSecret(secret), created_at: now, revoked_at: null, created_by: ctx.actor.id })
        .execute();
      await record(tx, { accountId, actor: ctx.actor, ip: ctx.ip, mode: opts.mode, action: 'client.created', target: { type: 'oauth_client', id }, details: { name: opts.name ?? null, scopes: opts.scopes }, at: now });
    });
    return { client_id: id, client_secret: secret, account_id: accountId, mode: opts.mode, scopes: opts.scopes, created_at: new Date(now).toISOString(), created_by: ctx.actor.id };
  }

  async listClients(accountId: string, mode?: Mode) {
    let q = this.storage.db.selectFrom('oauth_clients').selectAll().where('account_id', '=', accountId);
    if (mode) q = q.where('mode', '=', mode);
    const rows = await q.orderBy('created_at', 'desc').execute();
    return rows.map((r) => ({
      client_id: r.id,
      name: r.name,
      mode: r.mode,
      scopes: JSON.parse(r.scopes) as string[],
      created_at: new Date(r.created_at).toISOString(),
      revoked_at: r.revoked_at ? new Date(r.revoked_at).toISOString() : null,
      created_by: r.created_by,
    }));
  }

  revokeClient(accountId: string, id: string, ctx: AuditContext = { actor: CLI_ACTOR, ip: null }, mode?: Mode): Promise<boolean> {
    return this.revoke('oauth_clients', accountId, id, ctx, mode);
  }

  /** The client-credentials grant. Errors follow RFC 6749 §5.2, thrown as OAuthError. */
  async issueToken(clientId: string, clientSecret: string, requestedScope: string | undefined) {
    const client = await this.storage.read.selectFrom('oauth_clients').selectAll().where('id', '=', clientId).executeTakeFirst();
    const expected = client ? Buffer.from(client.secret_hash, 'hex') : Buffer.alloc(32);
    const given = Buffer.from(hashSecret(clientSecret), 'hex');
    if (!client || client.revoked_at !== null || !timingSafeEqual(expected, given)) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication failed.');
    }
    const held = JSON.parse(client.scopes) as string[];
    let granted = held;
    if (requestedScope !== undefined && requestedScope.trim() !== '') {
      const asked = requestedScope.trim().split(/\s+/);
      for (const s of asked) {
        if (!isScope(s) || !hasScope(held, s)) throw new OAuthError(400, 'invalid_scope', `The client does not hold the scope ${s}.`);
      }
      granted = [...new Set(asked)];
    }
    const now = Math.floor(this.clock.now() / 1000);
    const token = await new SignJWT({ acct: client.account_id, mode: client.mode, scope: granted.join(' ') })
      .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
      .setSubject(client.id)
      .setIssuedAt(now)
      .setExpirationTime(now + this.tokenTtlS)
      .setJti(randomToken(12))
      .sign((await this.signingKey())!);
    return { access_token: token, token_type: 'Bearer' as const, expires_in: this.tokenTtlS, scope: granted.join(' ') };
  }

  /** Resolves a bearer token to a principal, or throws AUTH_FAILED. */
  async authenticate(token: string): Promise<Principal> {
    if (token.startsWith('sb_test_') || token.startsWith('sb_live_')) {
      const row = await this.storage.read
        .selectFrom('api_keys')
        .select(['id', 'account_id', 'mode', 'scopes', 'revoked_at'])
        .where('secret_hash', '=', hashSecret(token))
        .executeTakeFirst();
      if (!row) throw AUTH('Unknown API key.');
      if (row.revoked_at !== null) throw AUTH('This API key has been revoked.');
      return { accountId: row.account_id, mode: row.mode as Mode, scopes: JSON.parse(row.scopes), kind: 'api_key', credentialId: row.id, bodies: true };
    }
    if (token.split('.').length !== 3) throw AUTH('Malformed bearer token.');
    const key = await this.signingKey(false);
    if (!key) throw AUTH('Invalid access token.');
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        currentDate: new Date(this.clock.now()),
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw AUTH('The access token has expired.');
      throw AUTH('Invalid access token.');
    }
    const clientId = String(payload.sub ?? '');
    const client = await this.storage.read.selectFrom('oauth_clients').select(['revoked_at', 'account_id']).where('id', '=', clientId).executeTakeFirst();
    if (!client || client.revoked_at !== null || client.account_id !== payload.acct) throw AUTH('The OAuth client has been revoked.');
    return {
      accountId: client.account_id,
      mode: payload.mode === 'live' ? 'live' : 'test',
      scopes: String(payload.scope ?? '').split(' ').filter(Boolean),
      kind: 'oauth',
      credentialId: clientId,
      bodies: true,
    };
  }
}

export class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly oauthCode: 'invalid_client' | 'invalid_scope' | 'invalid_request' | 'unsupported_grant_type',
    message: string,
  ) {
    super(message);
  }
}
