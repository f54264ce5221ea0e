// Migration 007: sender pools. A pool is a named set of an account's senders; a message sent
// "from" the pool gets one of them. `sender_pool_sticky` remembers which number each recipient
// first heard from, so that they keep hearing from it across restarts and pool changes.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  await db.schema
    .createTable('sender_pools')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('sticky', 'integer', (c) => c.notNull())
    .addColumn('area_code_match', 'integer', (c) => c.notNull())
    .addColumn('is_default', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('sender_pools_account_name').on('sender_pools').columns(['account_id', 'name']).unique().execute();
  await db.schema
    .createTable('sender_pool_members')
    .addColumn('pool_id', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('position', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('sender_pool_members_pk', ['pool_id', 'sender_id'])
    .execute();
  await db.schema.createIndex('sender_pool_members_sender').on('sender_pool_members').column('sender_id').execute();
  await db.schema
    .createTable('sender_pool_sticky')
    .addColumn('pool_id', 'text', (c) => c.notNull())
    .addColumn('recipient', 'text', (c) => c.notNull())
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('sender_pool_sticky_pk', ['pool_id', 'recipient'])
    .execute();
}
