// An account's data-handling settings (issue 9, "minimum necessary" and retention), stored under
// `data` in accounts.settings beside `messaging`:
//   body_retention_days         — message bodies, media references and raw provider payloads are
//                                 removed this many days after the message was created (the
//                                 message, its statuses and its timeline stay); null keeps them.
//   mask_phone_numbers          — exports show numbers as +1202555**** instead of in full.
//   status_callback_include_body — whether a message's own status_callback gets its body and media
//                                 (webhook endpoints have their own `include_body`).
import { validation } from '../errors.ts';
import type { Executor } from '../storage/database.ts';
import { readAccountSettings } from '../consent/messaging-settings.ts';

export { maskPhone } from '../logger.ts';

export interface DataSettings {
  body_retention_days: number | null;
  mask_phone_numbers: boolean;
  status_callback_include_body: boolean;
}

export const DEFAULT_DATA_SETTINGS: DataSettings = { body_retention_days: null, mask_phone_numbers: false, status_callback_include_body: true };
export const MAX_RETENTION_DAYS = 3650;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function dataSettingsOf(all: Record<string, unknown>): DataSettings {
  const d = isObject(all.data) ? all.data : {};
  const days = d.body_retention_days;
  return {
    body_retention_days: typeof days === 'number' && Number.isInteger(days) && days >= 1 ? days : null,
    mask_phone_numbers: d.mask_phone_numbers === true,
    status_callback_include_body: d.status_callback_include_body !== false,
  };
}

export async function readDataSettings(db: Executor, accountId: string): Promise<DataSettings> {
  return dataSettingsOf((await readAccountSettings(db, accountId)).all);
}

/** Applies a partial update, validated field by field; returns the new settings. */
export function applyDataPatch(current: DataSettings, patch: unknown): DataSettings {
  if (!isObject(patch)) throw validation('body', 'The body must be a JSON object.');
  const next = { ...current };
  for (const k of Object.keys(patch)) {
    if (!(k in DEFAULT_DATA_SETTINGS)) throw validation(k, `Unknown setting ${k}; use ${Object.keys(DEFAULT_DATA_SETTINGS).join(', ')}.`);
  }
  if (patch.body_retention_days !== undefined) {
    const d = patch.body_retention_days;
    if (d !== null && (typeof d !== 'number' || !Number.isInteger(d) || d < 1 || d > MAX_RETENTION_DAYS)) {
      throw validation('body_retention_days', `body_retention_days must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or null to keep bodies.`);
    }
    next.body_retention_days = d;
  }
  for (const f of ['mask_phone_numbers', 'status_callback_include_body'] as const) {
    if (patch[f] === undefined) continue;
    if (typeof patch[f] !== 'boolean') throw validation(f, `${f} must be true or false.`);
    next[f] = patch[f];
  }
  return next;
}

export async function writeDataSettings(db: Executor, accountId: string, settings: DataSettings): Promise<void> {
  const { all } = await readAccountSettings(db, accountId);
  await db.updateTable('accounts').set({ settings: JSON.stringify({ ...all, data: settings }) }).where('id', '=', accountId).execute();
}
