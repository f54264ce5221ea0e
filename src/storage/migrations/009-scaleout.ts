// Migration 007: several processes on one database. `connector_leases` says which worker
// process holds a stateful connector's session (an SMPP bind) and until when; a partial index
// lets the API count an account's backlog (queued + sending) without reading its history.
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  await db.schema
    .createTable('connector_leases')
    .addColumn('connector_id', 'text', (c) => c.primaryKey())
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'bigint', (c) => c.notNull())
    .execute();
  await sql`create index messages_backlog on messages (account_id) where status in ('queued', 'sending')`.execute(db);
}
