// Migration 010: voice and ringless-voicemail outcomes on the message (what happened on the
// call, how long it lasted, who answered), and media: uploaded audio and images, and audio
// rendered from text, stored in the database so that every process of an install can serve it.
import { sql, type Kysely } from 'kysely';
import type { MigrationContext } from '../migrator.ts';

export async function up(db: Kysely<any>, ctx: MigrationContext): Promise<void> {
  await db.schema.alterTable('messages').addColumn('voice_outcome', 'text').execute();
  await db.schema.alterTable('messages').addColumn('voice_duration_s', 'integer').execute();
  await db.schema.alterTable('messages').addColumn('voice_answered_by', 'text').execute();

  await db.schema
    .createTable('media')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull())
    .addColumn('mode', 'text', (c) => c.notNull())
    // The unguessable part of the public URL: /media/{id}/{token}.
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('content_type', 'text', (c) => c.notNull())
    .addColumn('size', 'integer', (c) => c.notNull())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('data', ctx.dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
    // `upload`, or `tts` for audio rendered from a message's text.
    .addColumn('source', 'text', (c) => c.notNull())
    // Text to speech: a hash of (voice, text), so a retry or the same text again reuses the audio.
    .addColumn('tts_key', 'text')
    .addColumn('created_at', 'bigint', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('media_account').on('media').columns(['account_id', 'mode', 'id']).execute();
  await sql`create unique index media_tts on media (account_id, mode, tts_key) where tts_key is not null`.execute(db);
}
