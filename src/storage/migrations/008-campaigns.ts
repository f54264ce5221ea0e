// Migration 007: templates (versioned), lists and segments, campaigns with one row per
// recipient (the recipient row is the campaign's unit of work), and tracked short links.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  const ms = 'bigint';

  await db.schema
    .createTable('templates')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('deleted_at', ms)
    .execute();
  await db.schema.createIndex('templates_account_name').on('templates').columns(['account_id', 'mode', 'name']).execute();
  // Every version is kept: a message or campaign names the version it was rendered from.
  await db.schema
    .createTable('template_versions')
    .addColumn('template_id', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('variables', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('template_versions_pk', ['template_id', 'version'])
    .execute();

  await db.schema
    .createTable('lists')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('list_members')
    .addColumn('list_id', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text', (c) => c.notNull())
    .addColumn('added_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('list_members_pk', ['list_id', 'contact_id'])
    .execute();
  await db.schema
    .createTable('segments')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('filter', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('campaigns')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('template_id', 'text')
    .addColumn('template_version', 'integer')
    .addColumn('body', 'text', (c) => c.notNull())
    .addColumn('variables', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('from_addr', 'text')
    .addColumn('start_at', ms)
    .addColumn('rate_per_minute', 'integer')
    .addColumn('send_window', 'text')
    .addColumn('validity_s', 'integer', (c) => c.notNull())
    .addColumn('total', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expanded', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expand_cursor', 'text')
    .addColumn('released', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('pace_base_at', ms)
    .addColumn('pace_base_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addColumn('started_at', ms)
    .addColumn('completed_at', ms)
    .execute();
  await db.schema.createIndex('campaigns_account').on('campaigns').columns(['account_id', 'mode', 'id']).execute();
  await db.schema.createIndex('campaigns_status').on('campaigns').columns(['status']).execute();

  await db.schema
    .createTable('campaign_recipients')
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('phone', 'text', (c) => c.notNull())
    .addColumn('contact_id', 'text')
    .addColumn('variables', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('release_at', ms, (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('error_code', 'text')
    .addColumn('error_message', 'text')
    .addColumn('updated_at', ms, (c) => c.notNull())
    .addPrimaryKeyConstraint('campaign_recipients_pk', ['campaign_id', 'seq'])
    .execute();
  await db.schema.createIndex('campaign_recipients_pending').on('campaign_recipients').columns(['campaign_id', 'status', 'release_at', 'seq']).execute();
  await db.schema.createIndex('campaign_recipients_message').on('campaign_recipients').columns(['message_id']).execute();
  await db.schema.createIndex('campaign_recipients_phone').on('campaign_recipients').columns(['campaign_id', 'phone']).execute();

  await db.schema
    .createTable('campaign_links')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('url', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('campaign_links_campaign').on('campaign_links').columns(['campaign_id']).execute();
  const table = db.schema.createTable('link_clicks');
  await (ctx.dialect === 'postgres' ? table.addColumn('id', 'bigserial', (c) => c.primaryKey()) : table.addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement()))
    .addColumn('campaign_id', 'text', (c) => c.notNull())
    .addColumn('code', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('message_id', 'text')
    .addColumn('contact_id', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('link_clicks_campaign').on('link_clicks').columns(['campaign_id', 'seq']).execute();
}
