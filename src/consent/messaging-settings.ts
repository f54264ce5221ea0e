// An account's messaging rules: keyword reply texts and custom keywords, marketing quiet hours,
// and destination-country rules. Stored under `messaging` in accounts.settings (JSON); what an
// account has not set falls back to the defaults here. The send path reads them through a
// one-second cache (storage/read-cache.ts): this process sees a change at once, others within
// a second.
import { AppError, validation } from '../errors.ts';
import type { Executor } from '../storage/database.ts';
import { isValidTimeZone, parseHhMm } from './time-zones.ts';

export const OPT_OUT_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE'];
export const OPT_IN_KEYWORDS = ['START', 'UNSTOP', 'YES'];
export const HELP_KEYWORDS = ['HELP', 'INFO'];
const RESERVED = new Set([...OPT_OUT_KEYWORDS, ...OPT_IN_KEYWORDS, ...HELP_KEYWORDS]);

export interface CustomKeyword {
  /** As the sender types it, e.g. "JOIN VIP"; matched case- and space-insensitively. */
  keyword: string;
  /** The named list (consent purpose) the sender opts into. */
  list: string;
  reply: string;
}

export interface MessagingSettings {
  keywords: {
    opt_out_reply: string;
    opt_in_reply: string;
    help_reply: string;
    custom: CustomKeyword[];
  };
  quiet_hours: {
    enabled: boolean;
    /** Marketing goes out only from `allowed_from` until `allowed_until`, recipient local time. */
    allowed_from: string;
    allowed_until: string;
    /** Used when neither the contact nor the number tells the recipient's zone. */
    fallback_time_zone: string;
  };
  countries: {
    /** ISO 3166 alpha-2 codes; empty means every country not blocked. */
    allow: string[];
    block: string[];
  };
  /**
   * When no route carries media, an MMS goes as an SMS with its media links appended to the
   * text (routing/mms-fallback.ts). Off by default: then such an MMS is refused.
   */
  mms_fallback_to_sms_link: boolean;
}

export const DEFAULT_MESSAGING: MessagingSettings = {
  keywords: {
    opt_out_reply: '{account}: you are unsubscribed and will receive no more messages. Reply START to resubscribe.',
    opt_in_reply: '{account}: you are subscribed again. Reply HELP for help, STOP to unsubscribe.',
    help_reply: '{account}: reply STOP to unsubscribe, START to resubscribe. Msg & data rates may apply.',
    custom: [],
  },
  quiet_hours: { enabled: true, allowed_from: '08:00', allowed_until: '21:00', fallback_time_zone: 'UTC' },
  countries: { allow: [], block: [] },
  mms_fallback_to_sms_link: false,
};

/** The keyword form of a text: spaces out, upper case ("join vip " → "JOINVIP"). */
export function keywordOf(body: string): string {
  return body.replace(/\s+/g, '').toUpperCase();
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function merged(stored: unknown): MessagingSettings {
  const s = isObject(stored) ? stored : {};
  const k = isObject(s.keywords) ? s.keywords : {};
  const q = isObject(s.quiet_hours) ? s.quiet_hours : {};
  const c = isObject(s.countries) ? s.countries : {};
  return {
    keywords: { ...DEFAULT_MESSAGING.keywords, ...k } as MessagingSettings['keywords'],
    quiet_hours: { ...DEFAULT_MESSAGING.quiet_hours, ...q } as MessagingSettings['quiet_hours'],
    countries: { ...DEFAULT_MESSAGING.countries, ...c } as MessagingSettings['countries'],
    mms_fallback_to_sms_link: s.mms_fallback_to_sms_link === true,
  };
}

export async function readAccountSettings(db: Executor, accountId: string): Promise<{ name: string; all: Record<string, unknown>; messaging: MessagingSettings }> {
  const row = await db.selectFrom('accounts').select(['name', 'settings']).where('id', '=', accountId).executeTakeFirst();
  if (!row) throw new AppError('NOT_FOUND', `No account ${accountId}.`, { id: accountId });
  let all: Record<string, unknown> = {};
  try {
    const parsed = JSON.parse(row.settings);
    if (isObject(parsed)) all = parsed;
  } catch {
    // A corrupt settings column must not stop sending: defaults apply.
  }
  return { name: row.name, all, messaging: merged(all.messaging) };
}

export async function readMessagingSettings(db: Executor, accountId: string): Promise<MessagingSettings> {
  return (await readAccountSettings(db, accountId)).messaging;
}

const TEXT_MAX = 480;
const checkText = (field: string, v: unknown) => {
  if (typeof v !== 'string' || v.trim() === '' || v.length > TEXT_MAX) throw validation(field, `${field} must be 1 to ${TEXT_MAX} characters.`);
  return v;
};
const checkCountries = (field: string, v: unknown): string[] => {
  if (!Array.isArray(v) || v.length > 300) throw validation(field, `${field} must be an array of ISO 3166 alpha-2 country codes.`);
  return v.map((c, i) => {
    if (typeof c !== 'string' || !/^[A-Za-z]{2}$/.test(c)) throw validation(`${field}[${i}]`, `${field}[${i}] must be a two-letter country code such as US.`);
    return c.toUpperCase();
  });
};

/** Applies a partial update (any subset of the fields), validated; returns the new settings. */
export function applyPatch(current: MessagingSettings, patch: unknown): MessagingSettings {
  if (!isObject(patch)) throw validation('body', 'The body must be a JSON object.');
  const next: MessagingSettings = structuredClone(current);
  if (patch.keywords !== undefined) {
    if (!isObject(patch.keywords)) throw validation('keywords', 'keywords must be an object.');
    for (const f of ['opt_out_reply', 'opt_in_reply', 'help_reply'] as const) {
      if (patch.keywords[f] !== undefined) next.keywords[f] = checkText(`keywords.${f}`, patch.keywords[f]);
    }
    if (patch.keywords.custom !== undefined) {
      const custom = patch.keywords.custom;
      if (!Array.isArray(custom) || custom.length > 100) throw validation('keywords.custom', 'keywords.custom must be an array of at most 100 keywords.');
      const seen = new Set<string>();
      next.keywords.custom = custom.map((c, i) => {
        const f = `keywords.custom[${i}]`;
        if (!isObject(c)) throw validation(f, `${f} must be {"keyword", "list", "reply"}.`);
        if (typeof c.keyword !== 'string' || !/^[A-Za-z0-9 ]{2,40}$/.test(c.keyword)) throw validation(`${f}.keyword`, 'A keyword is 2 to 40 letters, digits and spaces.');
        const norm = keywordOf(c.keyword);
        if (RESERVED.has(norm)) throw validation(`${f}.keyword`, `${c.keyword} is a standard keyword (STOP, START, HELP and their synonyms) and cannot be redefined.`);
        if (seen.has(norm)) throw validation(`${f}.keyword`, `${c.keyword} is defined twice.`);
        seen.add(norm);
        if (typeof c.list !== 'string' || !/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(c.list) || ['all', 'transactional', 'marketing'].includes(c.list)) {
          throw validation(`${f}.list`, 'list is a named list: 1 to 64 lower-case letters, digits, _ . - (not all, transactional or marketing).');
        }
        return { keyword: c.keyword.trim().replace(/\s+/g, ' ').toUpperCase(), list: c.list, reply: checkText(`${f}.reply`, c.reply) };
      });
    }
  }
  if (patch.quiet_hours !== undefined) {
    const q = patch.quiet_hours;
    if (!isObject(q)) throw validation('quiet_hours', 'quiet_hours must be an object.');
    if (q.enabled !== undefined) {
      if (typeof q.enabled !== 'boolean') throw validation('quiet_hours.enabled', 'quiet_hours.enabled must be true or false.');
      next.quiet_hours.enabled = q.enabled;
    }
    for (const f of ['allowed_from', 'allowed_until'] as const) {
      if (q[f] === undefined) continue;
      try {
        parseHhMm(String(q[f]));
      } catch {
        throw validation(`quiet_hours.${f}`, `quiet_hours.${f} must be a 24-hour time HH:MM, such as 08:00.`);
      }
      next.quiet_hours[f] = String(q[f]);
    }
    if (q.fallback_time_zone !== undefined) {
      if (typeof q.fallback_time_zone !== 'string' || !isValidTimeZone(q.fallback_time_zone)) throw validation('quiet_hours.fallback_time_zone', 'fallback_time_zone must be an IANA time zone such as America/New_York.');
      next.quiet_hours.fallback_time_zone = q.fallback_time_zone;
    }
  }
  if (patch.countries !== undefined) {
    const c = patch.countries;
    if (!isObject(c)) throw validation('countries', 'countries must be {"allow": [...], "block": [...]}.');
    if (c.allow !== undefined) next.countries.allow = checkCountries('countries.allow', c.allow);
    if (c.block !== undefined) next.countries.block = checkCountries('countries.block', c.block);
  }
  if (patch.mms_fallback_to_sms_link !== undefined) {
    if (typeof patch.mms_fallback_to_sms_link !== 'boolean') throw validation('mms_fallback_to_sms_link', 'mms_fallback_to_sms_link must be true or false.');
    next.mms_fallback_to_sms_link = patch.mms_fallback_to_sms_link;
  }
  return next;
}

/** Writes the messaging part of accounts.settings, leaving every other key as it was. */
export async function writeMessagingSettings(db: Executor, accountId: string, settings: MessagingSettings): Promise<void> {
  const { all } = await readAccountSettings(db, accountId);
  await db.updateTable('accounts').set({ settings: JSON.stringify({ ...all, messaging: settings }) }).where('id', '=', accountId).execute();
}

/** A reply text with its placeholders filled: {account} is the account's name. */
export function fillReply(text: string, accountName: string): string {
  return text.replaceAll('{account}', accountName);
}
