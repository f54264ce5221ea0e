// Migration 013: data protection (issue 9). Key rotations and their progress; body retention
// (which messages were redacted, each account's sweep position, and the few messages that were
// still on their way when their time came); webhooks that leave bodies out. See
// src/security/ and docs/security.md.
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';
  // One row per `switchboard keys rotate-encryption`: its progress is committed with each batch,
  // so a crash resumes where it stopped; the lease keeps two workers from running it at once.
  await db.schema
    .createTable('key_rotations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('target_key_id', 'text', (c) => c.notNull())
    .addColumn('batch_size', 'integer', (c) => c.notNull())
    .addColumn('table_index', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cursor', 'text')
    .addColumn('total', ms, (c) => c.notNull().defaultTo(0))
    .addColumn('scanned', ms, (c) => c.notNull().defaultTo(0))
    .addColumn('resealed', ms, (c) => c.notNull().defaultTo(0))
    .addColumn('unreadable', ms, (c) => c.notNull().defaultTo(0))
    .addColumn('lease_owner', 'text')
    .addColumn('lease_expires_at', ms)
    .addColumn('error', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('finished_at', ms)
    .execute();
  // A database that already holds data was written before encryption at rest: a rotation (to
  // whatever primary key the first worker has) seals what is still plain, in the background.
  const hasData =
    (await db.selectFrom('messages').select('id').limit(1).executeTakeFirst()) ??
    (await db.selectFrom('connectors').select('id').where('secrets', 'is not', null).limit(1).executeTakeFirst()) ??
    (await db.selectFrom('settings').select('key').limit(1).executeTakeFirst());
  if (hasData) {
    const now = Date.now();
    await db
      .insertInto('key_rotations')
      .values({ id: 'rot_upgrade_013', status: 'running', target_key_id: '*', batch_size: 500, table_index: 0, total: 0, scanned: 0, resealed: 0, unreadable: 0, created_at: now, updated_at: now })
      .execute();
  }

  await db.schema.alterTable('messages').addColumn('redacted_at', ms).execute();
  await db.schema
    .createTable('retention_cursors')
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('cursor', 'text', (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('retention_cursors_pk', ['account_id', 'mode'])
    .execute();
  await db.schema
    .createTable('retention_deferred')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  // Redaction finds a message's outbox rows and held receipts by message id.
  await sql`create index outbox_message on outbox (message_id) where message_id is not null`.execute(db);
  await sql`create index pending_receipts_message on pending_receipts (message_id) where message_id is not null`.execute(db);

  await db.schema.alterTable('webhook_endpoints').addColumn('include_body', 'integer', (c) => c.notNull().defaultTo(1)).execute();
}
