// Twilio credentials mapped onto Switchboard's accounts, modes and keys.
//
//   account SID + auth token — one pair per Switchboard account and mode, made on first use
//       (`switchboard twilio credentials`, GET /v1/twilio/credentials). The token is stored twice:
//       as a SHA-256 hash, to verify HTTP Basic without ever opening it, and sealed
//       (src/security/crypto.ts), because it is also the HMAC key of X-Twilio-Signature on the
//       callbacks we send and is shown again on request. It holds every scope of its account and
//       mode, as Twilio's auth token does.
//   API key SID + secret — an existing Switchboard API key: SK + the hex of its `key_…` id, with
//       its `sb_…` secret as the password. It keeps its own scopes and mode.
// Either way the {AccountSid} in the path must be the credential's account SID; another SID
// answers 404 20404, as Twilio does for an account the credential cannot see.
import { timingSafeEqual } from 'node:crypto';
import { hashSecret, type CredentialService } from '../auth/credential-service.ts';
import type { Mode, Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError } from '../errors.ts';
import { recordBy, SYSTEM_ACTOR, type AuditContext } from '../audit/audit-service.ts';
import type { Storage } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import { idOf, isSid, newAccountSid, newAuthToken } from './sids.ts';
import { twilioAuthFailed, twilioNotFound } from './twilio-errors.ts';
import { twilioDb, twilioRead, twilioTx, type TwilioAccountsTable } from './twilio-tables.ts';

/** The platform making credentials for itself (a callback to sign before anyone asked for them). */
const SYSTEM: AuditContext = { actor: SYSTEM_ACTOR, ip: null };

export interface TwilioCredentials {
  object: 'twilio_credentials';
  account_sid: string;
  auth_token: string;
  account_id: string;
  mode: Mode;
  created_at: string;
  updated_at: string;
}

const sameHash = (hex: string, secret: string) => {
  const a = Buffer.from(hex, 'hex');
  const b = Buffer.from(hashSecret(secret), 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
};

export class TwilioAccounts {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private keys: CredentialService,
  ) {}

  private row(accountId: string, mode: string) {
    return twilioDb(this.storage).selectFrom('twilio_accounts').selectAll().where('account_id', '=', accountId).where('mode', '=', mode).executeTakeFirst();
  }

  private view(r: TwilioAccountsTable): TwilioCredentials {
    return {
      object: 'twilio_credentials',
      account_sid: r.account_sid,
      auth_token: r.token_sealed,
      account_id: r.account_id,
      mode: r.mode as Mode,
      created_at: new Date(r.created_at).toISOString(),
      updated_at: new Date(r.updated_at).toISOString(),
    };
  }

  /**
   * The account's row for this mode, made on first use (two callers at once get the same one).
   * Making it is audited (`twilio_credentials.created`): the token holds every scope of its mode.
   */
  private async ensure(accountId: string, mode: Mode, by: Principal | AuditContext | undefined): Promise<TwilioAccountsTable> {
    const existing = await this.row(accountId, mode);
    if (existing) return existing;
    const now = this.clock.now();
    const token = newAuthToken();
    const sid = newAccountSid();
    await transaction(this.storage.db, async (tx) => {
      const res = await twilioTx(tx)
        .insertInto('twilio_accounts')
        .values({ account_sid: sid, account_id: accountId, mode, token_hash: hashSecret(token), token_sealed: token, created_at: now, updated_at: now })
        .onConflict((oc) => oc.columns(['account_id', 'mode']).doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) === 1) await recordBy(tx, by, { accountId, mode, action: 'twilio_credentials.created', target: { type: 'twilio_account', id: sid }, at: now });
    });
    return (await this.row(accountId, mode))!;
  }

  /** The account SID and auth token of an account and mode; `rotate` makes a new token (the SID stays). `by`: who asks (none: the CLI). */
  async credentials(accountId: string, mode: Mode, opts: { rotate?: boolean; by?: Principal | AuditContext } = {}): Promise<TwilioCredentials> {
    const row = await this.ensure(accountId, mode, opts.by);
    if (!opts.rotate) return this.view(row);
    const token = newAuthToken();
    const now = this.clock.now();
    const patch = { token_hash: hashSecret(token), token_sealed: token, updated_at: now };
    await transaction(this.storage.db, async (tx) => {
      await twilioTx(tx).updateTable('twilio_accounts').set(patch).where('account_sid', '=', row.account_sid).execute();
      await recordBy(tx, opts.by, { accountId, mode, action: 'twilio_credentials.rotated', target: { type: 'twilio_account', id: row.account_sid }, at: now });
    });
    return this.view({ ...row, ...patch });
  }

  /** The account SID and its auth token (the signing key), made on first use. */
  async signingKey(accountId: string, mode: string): Promise<{ accountSid: string; authToken: string }> {
    const row = await this.ensure(accountId, mode as Mode, SYSTEM);
    return { accountSid: row.account_sid, authToken: row.token_sealed };
  }

  /** The account SID of an account and mode, made on first use. */
  async accountSid(accountId: string, mode: string): Promise<string> {
    return (await this.ensure(accountId, mode as Mode, SYSTEM)).account_sid;
  }

  /**
   * HTTP Basic → a principal of kind `twilio`, checked against the {AccountSid} of the path.
   * Throws TwilioError 20003 (401) for bad credentials, 20404 (404) for another account's SID.
   */
  async authenticate(header: string | undefined, pathSid: string, path: string): Promise<Principal & { accountSid: string }> {
    const m = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
    if (!m) throw twilioAuthFailed();
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw twilioAuthFailed();
    const user = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const db = twilioRead(this.storage);
    if (isSid(user, 'AC')) {
      const row = await db.selectFrom('twilio_accounts').selectAll().where('account_sid', '=', user).executeTakeFirst();
      if (!row || !sameHash(row.token_hash, password)) throw twilioAuthFailed();
      if (pathSid !== row.account_sid) throw twilioNotFound(path);
      return { accountId: row.account_id, mode: row.mode as Mode, scopes: ['admin'], kind: 'twilio', credentialId: row.account_sid, bodies: true, accountSid: row.account_sid };
    }
    const keyId = idOf(user, 'key');
    if (keyId) {
      let key: Principal;
      try {
        key = await this.keys.authenticate(password);
      } catch (err) {
        if (err instanceof AppError) throw twilioAuthFailed();
        throw err;
      }
      if (key.kind !== 'api_key' || key.credentialId !== keyId) throw twilioAuthFailed();
      const row = await db.selectFrom('twilio_accounts').select('account_sid').where('account_id', '=', key.accountId).where('mode', '=', key.mode).executeTakeFirst();
      if (!row || row.account_sid !== pathSid) throw twilioNotFound(path);
      return { ...key, kind: 'twilio', accountSid: row.account_sid };
    }
    throw twilioAuthFailed();
  }
}
