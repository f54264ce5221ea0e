// Numbered migrations, applied in order inside a transaction each. The list is static (no
// directory scanning) so that the set of migrations is part of the code, not of the disk.
import { Migrator, type Kysely, type Migration } from 'kysely';
import type { DialectName, Storage } from './database.ts';
import * as m001 from './migrations/001-initial.ts';
import * as m002 from './migrations/002-webhooks.ts';
import * as m003 from './migrations/003-contacts.ts';
import * as m004 from './migrations/004-connector-secrets.ts';
import * as m005 from './migrations/005-throttle.ts';
import * as m006 from './migrations/006-inbound-routes.ts';
import * as m007SenderPools from './migrations/007-sender-pools.ts';
import * as m008Campaigns from './migrations/008-campaigns.ts';
import * as m009Scaleout from './migrations/009-scaleout.ts';
import * as m010VoiceMedia from './migrations/010-voice-media.ts';
import * as m011Workflows from './migrations/011-workflows.ts';
import * as m014TwilioCompat from './migrations/014-twilio-compat.ts';
import * as m015ConversationReads from './migrations/015-conversation-reads.ts';
import * as m012People from './migrations/012-people.ts';
import * as m013DataProtection from './migrations/013-data-protection.ts';
import * as m016MediaSealing from './migrations/016-media-sealing.ts';

export interface MigrationContext {
  dialect: DialectName;
}

type MigrationModule = { up(db: Kysely<any>, ctx: MigrationContext): Promise<void> };

const MIGRATIONS: Record<string, MigrationModule> = {
  '001-initial': m001,
  '002-webhooks': m002,
  '003-contacts': m003,
  '004-connector-secrets': m004,
  '005-throttle': m005,
  '006-inbound-routes': m006,
  '007-sender-pools': m007SenderPools,
  '008-campaigns': m008Campaigns,
  '009-scaleout': m009Scaleout,
  '010-voice-media': m010VoiceMedia,
  '011-workflows': m011Workflows,
  '014-twilio-compat': m014TwilioCompat,
  '015-conversation-reads': m015ConversationReads,
  '012-people': m012People,
  '013-data-protection': m013DataProtection,
  '016-media-sealing': m016MediaSealing,
};

export async function migrate(storage: Storage): Promise<string[]> {
  const ctx: MigrationContext = { dialect: storage.dialect.name };
  const migrations: Record<string, Migration> = {};
  for (const [name, mod] of Object.entries(MIGRATIONS)) {
    migrations[name] = { up: (db) => mod.up(db, ctx) };
  }
  const migrator = new Migrator({
    db: storage.db,
    provider: { getMigrations: async () => migrations },
    migrationTableName: 'schema_migrations',
    migrationLockTableName: 'schema_migrations_lock',
    // Capabilities land in parallel branches; a database that already ran a later number must
    // still take an earlier one that arrives after it.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} failed: ${(error as Error).message ?? error}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
