// Installation-wide settings (a key-value table): the default account, the token signing key.
import type { Kysely } from 'kysely';
import type { DB } from './schema.ts';

export async function getSetting(db: Kysely<DB>, key: string): Promise<string | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
  return row?.value;
}

/** Returns the stored value, or stores `make()` — first writer wins across processes. */
export async function getOrCreateSetting(db: Kysely<DB>, key: string, make: () => string): Promise<string> {
  const existing = await getSetting(db, key);
  if (existing !== undefined) return existing;
  await db.insertInto('settings').values({ key, value: make() }).onConflict((oc) => oc.column('key').doNothing()).execute();
  return (await getSetting(db, key))!;
}

export async function setSetting(db: Kysely<DB>, key: string, value: string): Promise<void> {
  await db.insertInto('settings').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
}
