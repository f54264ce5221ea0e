// Migration 005: throughput limits. One row per limited key (a sender, a connector, an
// account) holding its GCRA "theoretical arrival time"; messages remember the slot reserved
// for them so a throttled message is not charged twice.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  await db.schema
    .createTable('throttle_state')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('tat', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('messages').addColumn('reserved_slot', 'bigint').execute();
  await db.schema.alterTable('messages').addColumn('reserved_connector', 'text').execute();
}
