// Migration 014: the Twilio-compatible API (src/twilio-compat).
//   twilio_accounts — one Twilio account SID per Switchboard account and mode, with its auth
//                     token hashed (to verify HTTP Basic) and sealed (the HMAC key that signs
//                     X-Twilio-Signature on callbacks, and what `credentials` shows again).
//   twilio_messages — what a message sent through the compatible API adds: its messaging
//                     service SID, its Twilio-style StatusCallback, and when it was deleted
//                     from the Twilio view. A message id only: never a copy of the body.
//   twilio_numbers  — a sender's incoming-message URL (SmsUrl, SmsMethod) per mode.
import type { Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, _ctx: MigrationContext): Promise<void> {
  await db.schema
    .createTable('twilio_accounts')
    .addColumn('account_sid', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('accounts.id'))
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('token_sealed', 'text', (c) => c.notNull())
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('twilio_accounts_account_mode').unique().on('twilio_accounts').columns(['account_id', 'mode']).execute();

  await db.schema
    .createTable('twilio_messages')
    .addColumn('message_id', 'text', (c) => c.primaryKey())
    .addColumn('messaging_service_sid', 'text')
    .addColumn('status_callback', 'text')
    .addColumn('deleted_at', 'bigint')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('twilio_numbers')
    .addColumn('sender_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    .addColumn('friendly_name', 'text')
    .addColumn('sms_url', 'text')
    .addColumn('sms_method', 'text', (c) => c.notNull().defaultTo('POST'))
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('twilio_numbers_pk', ['sender_id', 'mode'])
    .execute();
}
