// Contacts: the people an account talks to. One contact per phone number (E.164) per account and
// mode, with a name, a time zone (for quiet hours), an owner (the user or team their replies go
// to), tags and custom fields. This module owns the `contacts` table; imports are in
// contact-import.ts, consent in ../consent.
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { normaliseNumber } from '../messages/phone.ts';
import { isValidTimeZone } from '../consent/time-zones.ts';
import type { Executor, Storage } from '../storage/database.ts';
import type { ContactsTable } from '../storage/schema.ts';

export type ContactRow = ContactsTable;

export interface ContactView {
  id: string;
  object: 'contact';
  phone: string;
  name: string | null;
  time_zone: string | null;
  owner: string | null;
  tags: string[];
  custom_fields: Record<string, string | number | boolean | null>;
  created_at: string;
  updated_at: string;
}

export interface ContactFields {
  phone?: string;
  name?: string | null;
  time_zone?: string | null;
  owner?: string | null;
  tags?: string[];
  custom_fields?: Record<string, string | number | boolean | null>;
}

export function toContactView(r: ContactRow): ContactView {
  return {
    id: r.id,
    object: 'contact',
    phone: r.phone,
    name: r.name,
    time_zone: r.time_zone,
    owner: r.owner,
    tags: JSON.parse(r.tags),
    custom_fields: JSON.parse(r.custom_fields),
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

/** Text from people (names, field values) is stored as plain text: control characters out. */
export function cleanText(v: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001F\u007F-\u009F\u200B-\u200F\u202A-\u202E\u2066-\u2069]/g, '').trim().slice(0, max);
}

const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const OWNER = /^[A-Za-z0-9_.:@+-]{1,100}$/;

/**
 * Validates contact fields (all optional: PATCH gives any subset). Throws VALIDATION_ERROR or
 * INVALID_NUMBER naming the field.
 */
export function parseContactFields(input: unknown): ContactFields {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw validation('body', 'The body must be a JSON object.');
  const b = input as Record<string, unknown>;
  const out: ContactFields = {};
  if (b.phone !== undefined) out.phone = normaliseNumber(b.phone, 'phone').e164;
  if (b.name !== undefined) {
    if (b.name !== null && (typeof b.name !== 'string' || b.name.length > 200)) throw validation('name', 'name must be a string of at most 200 characters, or null.');
    out.name = b.name === null ? null : cleanText(b.name, 200) || null;
  }
  if (b.time_zone !== undefined) {
    if (b.time_zone !== null && (typeof b.time_zone !== 'string' || !isValidTimeZone(b.time_zone))) throw validation('time_zone', 'time_zone must be an IANA time zone such as America/Chicago, or null.');
    out.time_zone = b.time_zone as string | null;
  }
  if (b.owner !== undefined) {
    if (b.owner !== null && (typeof b.owner !== 'string' || !OWNER.test(b.owner))) throw validation('owner', 'owner must be a user or team reference (1 to 100 letters, digits and _ . : @ + -), or null.');
    out.owner = b.owner as string | null;
  }
  if (b.tags !== undefined) {
    if (!Array.isArray(b.tags) || b.tags.length > 50) throw validation('tags', 'tags must be an array of at most 50 strings.');
    out.tags = [...new Set(b.tags.map((t, i) => {
      if (typeof t !== 'string' || cleanText(t, 64) === '' || t.length > 64) throw validation(`tags[${i}]`, 'A tag is 1 to 64 characters.');
      return cleanText(t, 64);
    }))];
  }
  if (b.custom_fields !== undefined) {
    const cf = b.custom_fields;
    if (typeof cf !== 'object' || cf === null || Array.isArray(cf)) throw validation('custom_fields', 'custom_fields must be an object.');
    const entries = Object.entries(cf);
    if (entries.length > 100) throw validation('custom_fields', 'custom_fields can hold at most 100 keys.');
    out.custom_fields = {};
    for (const [k, v] of entries) {
      if (k.length === 0 || k.length > 64 || RESERVED_KEYS.has(k)) throw validation(`custom_fields.${k}`, 'custom field names are 1 to 64 characters and not reserved names.');
      if (v !== null && typeof v !== 'number' && typeof v !== 'boolean' && (typeof v !== 'string' || v.length > 1000)) {
        throw validation(`custom_fields.${k}`, 'custom field values are strings (at most 1,000 characters), numbers, booleans or null.');
      }
      out.custom_fields[k] = typeof v === 'string' ? cleanText(v, 1000) : (v as number | boolean | null);
    }
  }
  return out;
}

export class ContactService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async create(pr: Principal, input: unknown): Promise<ContactView> {
    const f = parseContactFields(input);
    if (!f.phone) throw validation('phone', 'phone is required.');
    const now = this.clock.now();
    const row: ContactRow = {
      id: newId('contact', now),
      account_id: pr.accountId,
      mode: pr.mode,
      phone: f.phone,
      name: f.name ?? null,
      time_zone: f.time_zone ?? null,
      owner: f.owner ?? null,
      tags: JSON.stringify(f.tags ?? []),
      custom_fields: JSON.stringify(f.custom_fields ?? {}),
      created_at: now,
      updated_at: now,
    };
    const inserted = await this.storage.db
      .insertInto('contacts')
      .values(row)
      .onConflict((oc) => oc.columns(['account_id', 'mode', 'phone']).doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) {
      const existing = await this.byPhone(this.storage.db, pr.accountId, pr.mode, f.phone);
      throw validation('phone', `A contact with ${f.phone} already exists in this account: change it with PATCH /v1/contacts/${existing?.id}.`, { contact_id: existing?.id ?? null });
    }
    return toContactView(row);
  }

  async byPhone(db: Executor, accountId: string, mode: string, phone: string): Promise<ContactRow | undefined> {
    return db.selectFrom('contacts').selectAll().where('account_id', '=', accountId).where('mode', '=', mode).where('phone', '=', phone).executeTakeFirst();
  }

  async getRow(pr: Principal, id: string): Promise<ContactRow> {
    const row = await this.storage.db.selectFrom('contacts').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No contact ${id} in this account.`, { id });
    return row;
  }

  async get(pr: Principal, id: string): Promise<ContactView> {
    return toContactView(await this.getRow(pr, id));
  }

  async update(pr: Principal, id: string, input: unknown): Promise<ContactView> {
    const f = parseContactFields(input);
    const row = await this.getRow(pr, id);
    if (f.phone !== undefined && f.phone !== row.phone) {
      throw validation('phone', "A contact's phone cannot change: the consent ledger and conversations are kept by number. Create a new contact.");
    }
    const patch: Partial<ContactRow> = { updated_at: this.clock.now() };
    if (f.name !== undefined) patch.name = f.name;
    if (f.time_zone !== undefined) patch.time_zone = f.time_zone;
    if (f.owner !== undefined) patch.owner = f.owner;
    if (f.tags !== undefined) patch.tags = JSON.stringify(f.tags);
    if (f.custom_fields !== undefined) {
      // Merged key by key, like metadata elsewhere: a null value removes the key.
      const merged: Record<string, unknown> = { ...JSON.parse(row.custom_fields), ...f.custom_fields };
      for (const [k, v] of Object.entries(merged)) if (v === null) delete merged[k];
      patch.custom_fields = JSON.stringify(merged);
    }
    await this.storage.db.updateTable('contacts').set(patch).where('id', '=', id).execute();
    return toContactView({ ...row, ...patch });
  }

  async list(pr: Principal, q: { phone?: string; tag?: string; owner?: string; limit?: number; cursor?: string }) {
    const limit = q.limit ?? 50;
    let query = this.storage.db.selectFrom('contacts').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (q.phone !== undefined) query = query.where('phone', '=', normaliseNumber(q.phone, 'phone').e164);
    if (q.owner !== undefined) query = query.where('owner', '=', q.owner);
    if (q.cursor !== undefined) {
      if (!/^contact_[0-9a-z]{26}$/.test(q.cursor)) throw validation('cursor', 'cursor is not one this API returned.');
      query = query.where('id', '<', q.cursor);
    }
    // Tags are a JSON array: filtered here, in pages, so the query stays the same on every database.
    const out: ContactRow[] = [];
    let more = false;
    for (;;) {
      const rows = await query.orderBy('id', 'desc').limit(q.tag ? 500 : limit + 1).execute();
      const matching = q.tag ? rows.filter((r) => (JSON.parse(r.tags) as string[]).includes(q.tag!)) : rows;
      out.push(...matching);
      if (out.length > limit) {
        more = true;
        break;
      }
      if (!q.tag || rows.length < 500) break;
      query = query.where('id', '<', rows[rows.length - 1].id);
    }
    const page = out.slice(0, limit);
    return { data: page.map(toContactView), next_cursor: more ? page[page.length - 1].id : null };
  }

  /** The contact of a number, created (phone only) when there is none. Safe against a race. */
  async ensure(db: Executor, accountId: string, mode: string, phone: string): Promise<ContactRow> {
    const existing = await this.byPhone(db, accountId, mode, phone);
    if (existing) return existing;
    const now = this.clock.now();
    await db
      .insertInto('contacts')
      .values({ id: newId('contact', now), account_id: accountId, mode, phone, name: null, time_zone: null, owner: null, tags: '[]', custom_fields: '{}', created_at: now, updated_at: now })
      .onConflict((oc) => oc.columns(['account_id', 'mode', 'phone']).doNothing())
      .execute();
    return (await this.byPhone(db, accountId, mode, phone))!;
  }
}
