// Migration 001: the platform's first tables. Migrations are numbered, run in order, once each,
// inside a transaction, and are never edited after they ship: add a new one instead.
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';
  const serial = (t: any) =>
    ctx.dialect === 'postgres'
      ? t.addColumn('id', 'bigserial', (c: any) => c.primaryKey())
      : t.addColumn('id', 'integer', (c: any) => c.primaryKey().autoIncrement());

  await db.schema
    .createTable('accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('settings')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();

  for (const table of ['api_keys', 'oauth_clients']) {
    let t = db.schema
      .createTable(table)
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
      .addColumn('name', 'text')
      .addColumn('mode', 'text', (c) => c.notNull())
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', ms, (c) => c.notNull())
      .addColumn('revoked_at', ms);
    if (table === 'api_keys') t = t.addColumn('prefix', 'text', (c) => c.notNull()).addColumn('last_used_at', ms);
    await t.execute();
    await db.schema.createIndex(`${table}_account`).on(table).columns(['account_id', 'created_at']).execute();
  }

  await db.schema
    .createTable('connectors')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.references('accounts.id'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('config', 'text', (c) => c.notNull())
    .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('senders')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('address', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('connector_id', 'text', (c) => c.references('connectors.id'))
    .addColumn('capabilities', 'text', (c) => c.notNull())
    .addColumn('throughput', 'real')
    .addColumn('is_default', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addUniqueConstraint('senders_account_address', ['account_id', 'address'])
    .execute();
  await db.schema.createIndex('senders_address').on('senders').column('address').execute();

  await db.schema
    .createTable('routes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.references('accounts.id'))
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('filters', 'text', (c) => c.notNull())
    .addColumn('connector_id', 'text', (c) => c.references('connectors.id'))
    .addColumn('strategy', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('messages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('direction', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('to_addr', 'text', (c) => c.notNull())
    .addColumn('from_addr', 'text')
    .addColumn('body', 'text')
    .addColumn('media_urls', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('segments', 'integer', (c) => c.notNull())
    .addColumn('encoding', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('provider_message_id', 'text')
    .addColumn('connector_id', 'text')
    .addColumn('error_class', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('provider_code', 'text')
    .addColumn('metadata', 'text', (c) => c.notNull())
    .addColumn('status_callback', 'text')
    .addColumn('send_at', ms)
    .addColumn('expires_at', ms)
    .addColumn('next_attempt_at', ms)
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', ms)
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  // Listing newest-first within an account and mode is a scan of this index (ids are time-ordered).
  await db.schema.createIndex('messages_account_list').on('messages').columns(['account_id', 'mode', 'id']).execute();
  await db.schema.createIndex('messages_account_to').on('messages').columns(['account_id', 'to_addr']).execute();
  // The queue: only rows waiting to go are in these partial indexes, so claiming stays cheap
  // however many finished messages the table holds.
  await sql`create index messages_due on messages (next_attempt_at) where status in ('scheduled', 'queued')`.execute(db);
  await sql`create index messages_in_flight on messages (lease_expires_at) where status = 'sending'`.execute(db);
  await sql`create index messages_expiry on messages (expires_at) where status in ('scheduled', 'queued', 'sent')`.execute(db);
  await sql`create index messages_provider on messages (connector_id, provider_message_id) where provider_message_id is not null`.execute(db);

  await serial(db.schema.createTable('message_events'))
    .addColumn('message_id', 'text', (c: any) => c.notNull())
    .addColumn('status', 'text', (c: any) => c.notNull())
    .addColumn('at', ms, (c: any) => c.notNull())
    .addColumn('data', 'text', (c: any) => c.notNull())
    .execute();
  await db.schema.createIndex('message_events_message').on('message_events').columns(['message_id', 'id']).execute();

  await serial(db.schema.createTable('outbox'))
    .addColumn('account_id', 'text', (c: any) => c.notNull())
    .addColumn('mode', 'text', (c: any) => c.notNull())
    .addColumn('type', 'text', (c: any) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('payload', 'text', (c: any) => c.notNull())
    .addColumn('created_at', ms, (c: any) => c.notNull())
    .execute();

  await db.schema
    .createTable('idempotency_keys')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('key', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['account_id', 'mode', 'key'])
    .execute();
  await db.schema.createIndex('idempotency_keys_created').on('idempotency_keys').column('created_at').execute();

  await serial(db.schema.createTable('consent_records'))
    .addColumn('account_id', 'text', (c: any) => c.notNull())
    .addColumn('mode', 'text', (c: any) => c.notNull())
    .addColumn('phone', 'text', (c: any) => c.notNull())
    .addColumn('status', 'text', (c: any) => c.notNull())
    .addColumn('purpose', 'text', (c: any) => c.notNull())
    .addColumn('channel', 'text', (c: any) => c.notNull())
    .addColumn('source', 'text', (c: any) => c.notNull())
    .addColumn('evidence', 'text', (c: any) => c.notNull())
    .addColumn('created_at', ms, (c: any) => c.notNull())
    .execute();
  await db.schema.createIndex('consent_records_phone').on('consent_records').columns(['account_id', 'mode', 'phone', 'id']).execute();

  await db.schema
    .createTable('suppressions')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('suppressions_pk', ['account_id', 'mode', 'phone'])
    .execute();

  await db.schema
    .createTable('review_items')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('message_id', 'text', (c) => c.notNull())
    .addColumn('error_class', 'text', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('resolution', 'text')
    .addColumn('note', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('resolved_at', ms)
    .execute();
  await db.schema.createIndex('review_items_account').on('review_items').columns(['account_id', 'mode', 'status', 'id']).execute();

  await serial(db.schema.createTable('pending_receipts'))
    .addColumn('connector_id', 'text', (c: any) => c.notNull())
    .addColumn('provider_message_id', 'text', (c: any) => c.notNull())
    .addColumn('data', 'text', (c: any) => c.notNull())
    .addColumn('received_at', ms, (c: any) => c.notNull())
    .addColumn('applied_at', ms)
    .addColumn('message_id', 'text')
    .execute();
  await db.schema
    .createIndex('pending_receipts_provider')
    .on('pending_receipts')
    .columns(['connector_id', 'provider_message_id'])
    .execute();

  await db.schema
    .createTable('simulator_messages')
    .addColumn('connector_id', 'text', (c) => c.notNull())
    .addColumn('reference', 'text', (c) => c.notNull())
    .addColumn('provider_id', 'text')
    .addColumn('to_addr', 'text', (c) => c.notNull())
    .addColumn('from_addr', 'text')
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('submits', 'integer', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('receipt_due_at', ms)
    .addColumn('receipt', 'text')
    .addColumn('reply_due_at', ms)
    .addColumn('reply_body', 'text')
    .addPrimaryKeyConstraint('simulator_messages_pk', ['connector_id', 'reference'])
    .execute();
  await sql`create index simulator_receipts_due on simulator_messages (receipt_due_at) where receipt_due_at is not null`.execute(db);
  await sql`create index simulator_replies_due on simulator_messages (reply_due_at) where reply_due_at is not null`.execute(db);
}
