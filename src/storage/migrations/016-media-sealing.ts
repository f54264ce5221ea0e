// Migration 016: media bytes are sealed at rest (src/security/sealed-columns.ts). Files stored
// before are plain: a rotation to whatever primary key the first worker holds seals them in the
// background, as migration 013 did for the text columns (unless one is running already, which
// walks the media table too).
//
// And redaction (security/retention.ts redactMessages) clears the receivers' answers to a
// message's webhooks, found by the message id of their deliveries: pending ones through the
// index 002 made, the others through this one. It leaves pending deliveries out on purpose, so
// that the webhook worker's claim (which looks at pending deliveries by message) keeps its plan.
import { sql, type Kysely } from 'kysely';

export async function up(db: Kysely<any>): Promise<void> {
  await sql`create index webhook_deliveries_done_message on webhook_deliveries (message_id) where status <> 'pending' and message_id is not null`.execute(db);
  const media = await db.selectFrom('media').select('id').limit(1).executeTakeFirst();
  if (!media) return;
  const running = await db.selectFrom('key_rotations').select('id').where('status', '=', 'running').limit(1).executeTakeFirst();
  if (running) return;
  const now = Date.now();
  await db
    .insertInto('key_rotations')
    .values({ id: 'rot_upgrade_016', status: 'running', target_key_id: '*', batch_size: 500, table_index: 0, total: 0, scanned: 0, resealed: 0, unreadable: 0, created_at: now, updated_at: now })
    .execute();
}
