// Migration 012: people, sessions and the audit log (issue 9).
//   users            — a person in one account: email (unique per account, case-insensitive),
//                      an argon2id password hash, a role, an optional sealed TOTP secret
//   sessions         — dashboard sign-ins; the cookie's token is stored only as a hash
//   sign_in_throttle — failed sign-ins counted per email and per address, so a lockout holds
//                      across restarts and processes
//   audit_log        — append-only, one hash chain per account (`chain`), `seq` 1, 2, 3, …
//   audit_heads      — the last seq and hash of each chain; appends lock its row, so two
//                      writers can never fork a chain, and removing the newest entry shows
//   api_keys / oauth_clients.created_by — the user, key or client that created it, or `cli`
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';
  await db.schema
    .createTable('users')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('email_norm', 'text', (c) => c.notNull())
    .addColumn('password_hash', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('totp_secret', 'text')
    .addColumn('totp_pending_secret', 'text')
    .addColumn('totp_last_step', ms)
    .addColumn('disabled_at', ms)
    .addColumn('created_by', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('password_changed_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('users_account_email').on('users').columns(['account_id', 'email_norm']).unique().execute();
  await db.schema.createIndex('users_email').on('users').column('email_norm').execute();

  await db.schema
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('last_seen_at', ms, (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('revoked_at', ms)
    .execute();
  await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();

  await db.schema
    .createTable('sign_in_throttle')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .addColumn('window_started_at', ms, (c) => c.notNull())
    .addColumn('locked_until', ms)
    .execute();

  await db.schema
    .createTable('audit_log')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('chain', 'text', (c) => c.notNull())
    .addColumn('seq', ms, (c) => c.notNull())
    .addColumn('account_id', 'text')
    .addColumn('mode', 'text')
    .addColumn('at', ms, (c) => c.notNull())
    .addColumn('actor_type', 'text', (c) => c.notNull())
    .addColumn('actor_id', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('target_type', 'text')
    .addColumn('target_id', 'text')
    .addColumn('ip', 'text')
    .addColumn('details', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  // The unique (chain, seq) is the last guard against a fork: a second entry with the same
  // place in a chain cannot be written, whatever the locking did.
  await db.schema.createIndex('audit_log_chain_seq').on('audit_log').columns(['chain', 'seq']).unique().execute();
  await db.schema.createIndex('audit_log_action').on('audit_log').columns(['chain', 'action', 'seq']).execute();
  await db.schema.createIndex('audit_log_actor').on('audit_log').columns(['chain', 'actor_id', 'seq']).execute();
  await db.schema.createIndex('audit_log_target').on('audit_log').columns(['chain', 'target_id', 'seq']).execute();
  await db.schema
    .createTable('audit_heads')
    .addColumn('chain', 'text', (c) => c.primaryKey())
    .addColumn('seq', ms, (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();

  await db.schema.alterTable('api_keys').addColumn('created_by', 'text').execute();
  await db.schema.alterTable('oauth_clients').addColumn('created_by', 'text').execute();
}
