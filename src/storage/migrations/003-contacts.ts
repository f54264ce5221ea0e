// Migration 003: contacts, conversations, contact imports and keyword replies (the consent and
// inbox capability). Account messaging settings (keyword texts, quiet hours, country rules) live
// in accounts.settings and need no table.
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';

  await db.schema
    .createTable('contacts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('time_zone', 'text')
    .addColumn('owner', 'text')
    .addColumn('tags', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('custom_fields', 'text', (c) => c.notNull().defaultTo('{}'))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addUniqueConstraint('contacts_account_phone', ['account_id', 'mode', 'phone'])
    .execute();
  await db.schema.createIndex('contacts_account_list').on('contacts').columns(['account_id', 'mode', 'id']).execute();

  await db.schema
    .createTable('conversations')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('contact_phone', 'text', (c) => c.notNull())
    .addColumn('number', 'text', (c) => c.notNull())
    .addColumn('last_message_id', 'text')
    .addColumn('last_message_at', ms, (c) => c.notNull())
    .addColumn('last_direction', 'text')
    .addColumn('created_at', ms, (c) => c.notNull())
    .addUniqueConstraint('conversations_contact_number', ['account_id', 'mode', 'contact_phone', 'number'])
    .execute();
  await db.schema.createIndex('conversations_recent').on('conversations').columns(['account_id', 'mode', 'last_message_at']).execute();
  // A conversation's messages are found by address pair; inbound ones by their sender.
  await db.schema.createIndex('messages_account_from').on('messages').columns(['account_id', 'from_addr']).execute();

  await db.schema
    .createTable('contact_imports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('filename', 'text')
    .addColumn('bytes_total', ms)
    .addColumn('bytes_read', ms, (c) => c.notNull().defaultTo(0))
    .addColumn('rows_processed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('updated', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('errors', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('started_at', ms, (c) => c.notNull())
    .addColumn('finished_at', ms)
    .execute();
  await db.schema.createIndex('contact_imports_account').on('contact_imports').columns(['account_id', 'mode', 'id']).execute();

  // Outbound messages sent in answer to a keyword. The opt-out confirmation is the one message
  // that may reach a suppressed number: the dispatcher's suppression check looks here.
  await db.schema
    .createTable('keyword_replies')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('inbound_message_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await sql`create index keyword_replies_inbound on keyword_replies (inbound_message_id)`.execute(db);
}
