// Audiences: who a campaign goes to. Static lists (contacts added by id or phone) and segments
// (a saved filter over contact fields, tags and consent state, evaluated when used, so a segment
// always means "the contacts that match now"). This module owns `lists`, `list_members` and
// `segments`; campaigns read audiences through `page`, one bounded chunk at a time.
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import type { ConsentService } from '../consent/consent-service.ts';
import { cleanText, toContactView, type ContactRow, type ContactService, type ContactView } from '../contacts/contact-service.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { CHANNELS } from '../messages/message-service.ts';
import { normaliseNumber } from '../messages/phone.ts';
import type { Storage } from '../storage/database.ts';

export interface SegmentFilter {
  /** The contact has every one of these tags. */
  tags?: string[];
  /** The contact has at least one of these tags. */
  any_tags?: string[];
  /** Exact values of name, owner, time_zone, or of custom fields (by their name). */
  fields?: Record<string, string | number | boolean | null>;
  /** The contact's current consent for a purpose and channel: opted_in, opted_out, or none (no record). */
  consent?: { status: 'opted_in' | 'opted_out' | 'none'; purpose?: string; channel?: string };
}

export type Audience = { list_id: string } | { segment_id: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function parseName(v: unknown): string {
  if (typeof v !== 'string' || cleanText(v, 200) === '') throw validation('name', 'name must be a non-empty string of at most 200 characters.');
  return cleanText(v, 200);
}

function parseFilter(v: unknown): SegmentFilter {
  if (!isObject(v)) throw validation('filter', 'filter must be an object: {"tags", "any_tags", "fields", "consent"}.');
  const out: SegmentFilter = {};
  for (const key of Object.keys(v)) if (!['tags', 'any_tags', 'fields', 'consent'].includes(key)) throw validation(`filter.${key}`, `Unknown filter ${key}: use tags, any_tags, fields or consent.`);
  for (const key of ['tags', 'any_tags'] as const) {
    if (v[key] === undefined) continue;
    const tags = v[key];
    if (!Array.isArray(tags) || tags.length > 50 || tags.some((t) => typeof t !== 'string' || t === '')) throw validation(`filter.${key}`, `filter.${key} must be an array of tags.`);
    out[key] = tags as string[];
  }
  if (v.fields !== undefined) {
    if (!isObject(v.fields)) throw validation('filter.fields', 'filter.fields must be an object of field values.');
    for (const [k, val] of Object.entries(v.fields)) {
      if (val !== null && !['string', 'number', 'boolean'].includes(typeof val)) throw validation(`filter.fields.${k}`, 'A field value is a string, number, boolean or null.');
    }
    out.fields = v.fields as SegmentFilter['fields'];
  }
  if (v.consent !== undefined) {
    const c = v.consent;
    if (!isObject(c) || !['opted_in', 'opted_out', 'none'].includes(c.status as string)) throw validation('filter.consent.status', 'filter.consent.status must be opted_in, opted_out or none.');
    if (c.purpose !== undefined && !['marketing', 'transactional', 'all'].includes(c.purpose as string)) throw validation('filter.consent.purpose', 'purpose must be marketing, transactional or all.');
    if (c.channel !== undefined && !['all', ...CHANNELS].includes(c.channel as string)) throw validation('filter.consent.channel', `channel must be all or one of ${CHANNELS.join(', ')}.`);
    out.consent = { status: c.status as 'opted_in', purpose: (c.purpose as string | undefined) ?? 'marketing', channel: (c.channel as string | undefined) ?? 'sms' };
  }
  return out;
}

export class AudienceService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private contacts: ContactService,
    private consent: ConsentService,
  ) {}

  // Lists

  async createList(pr: Principal, input: unknown) {
    const b = isObject(input) ? input : {};
    const now = this.clock.now();
    const row = { id: newId('list', now), account_id: pr.accountId, mode: pr.mode, name: parseName(b.name), created_at: now };
    await this.storage.db.insertInto('lists').values(row).execute();
    return this.listView(row, 0);
  }

  private listView(r: { id: string; name: string; created_at: number }, count: number) {
    return { id: r.id, object: 'list' as const, name: r.name, contacts: count, created_at: new Date(r.created_at).toISOString() };
  }

  private async listRow(pr: Principal, id: string) {
    const row = await this.storage.db.selectFrom('lists').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No list ${id} in this account.`, { id });
    return row;
  }

  private async memberCount(listId: string): Promise<number> {
    const r = await this.storage.db.selectFrom('list_members').select((eb) => eb.fn.countAll<number>().as('n')).where('list_id', '=', listId).executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async getList(pr: Principal, id: string) {
    const row = await this.listRow(pr, id);
    return this.listView(row, await this.memberCount(id));
  }

  async lists(pr: Principal) {
    const rows = await this.storage.db.selectFrom('lists').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).orderBy('id', 'desc').limit(1000).execute();
    return { data: await Promise.all(rows.map(async (r) => this.listView(r, await this.memberCount(r.id)))) };
  }

  /**
   * Adds contacts by id (they must be this account's) or by phone (a contact is created for a
   * number that has none). All are checked before any is added: a bad item adds nothing.
   */
  async addToList(pr: Principal, id: string, input: unknown) {
    await this.listRow(pr, id);
    const b = isObject(input) ? input : {};
    const ids = b.contact_ids ?? [];
    const phones = b.phones ?? [];
    if (!Array.isArray(ids) || !Array.isArray(phones)) throw validation('contact_ids', 'contact_ids and phones must be arrays.');
    if (ids.length + phones.length === 0) throw validation('contact_ids', 'Give contact_ids or phones (or both).');
    if (ids.length + phones.length > 10_000) throw validation('contact_ids', 'At most 10,000 contacts per call.');
    const numbers = phones.map((ph, i) => normaliseNumber(ph, `phones[${i}]`).e164);
    ids.forEach((c, i) => {
      if (typeof c !== 'string') throw validation(`contact_ids[${i}]`, 'A contact id is a string.');
    });
    const db = this.storage.db;
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await db.selectFrom('contacts').select('id').where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('id', 'in', ids.slice(i, i + 500) as string[]).execute();
      for (const r of rows) found.add(r.id);
    }
    const unknown = (ids as string[]).findIndex((c) => !found.has(c));
    if (unknown >= 0) throw new AppError('NOT_FOUND', `No contact ${ids[unknown]} in this account.`, { field: `contact_ids[${unknown}]`, id: ids[unknown] });
    const now = this.clock.now();
    let added = 0;
    await db.transaction().execute(async (tx) => {
      const all = [...found];
      for (const phone of numbers) all.push((await this.contacts.ensure(tx, pr.accountId, pr.mode, phone)).id);
      const unique = [...new Set(all)];
      for (let i = 0; i < unique.length; i += 300) {
        const res = await tx
          .insertInto('list_members')
          .values(unique.slice(i, i + 300).map((contact_id) => ({ list_id: id, contact_id, added_at: now })))
          .onConflict((oc) => oc.columns(['list_id', 'contact_id']).doNothing())
          .executeTakeFirst();
        added += Number(res.numInsertedOrUpdatedRows ?? 0);
      }
    });
    return { added, list: await this.getList(pr, id) };
  }

  async listContacts(pr: Principal, id: string, q: { limit?: number; cursor?: string }) {
    await this.listRow(pr, id);
    return this.pageView(pr, { list_id: id }, q);
  }

  // Segments

  async createSegment(pr: Principal, input: unknown) {
    const b = isObject(input) ? input : {};
    const now = this.clock.now();
    const row = { id: newId('seg', now), account_id: pr.accountId, mode: pr.mode, name: parseName(b.name), filter: JSON.stringify(parseFilter(b.filter)), created_at: now };
    await this.storage.db.insertInto('segments').values(row).execute();
    return this.segmentView(row);
  }

  private segmentView(r: { id: string; name: string; filter: string; created_at: number }) {
    return { id: r.id, object: 'segment' as const, name: r.name, filter: JSON.parse(r.filter) as SegmentFilter, created_at: new Date(r.created_at).toISOString() };
  }

  private async segmentRow(pr: Principal, id: string) {
    const row = await this.storage.db.selectFrom('segments').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No segment ${id} in this account.`, { id });
    return row;
  }

  async getSegment(pr: Principal, id: string) {
    return this.segmentView(await this.segmentRow(pr, id));
  }

  async segments(pr: Principal) {
    const rows = await this.storage.db.selectFrom('segments').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).orderBy('id', 'desc').limit(1000).execute();
    return { data: rows.map((r) => this.segmentView(r)) };
  }

  async segmentContacts(pr: Principal, id: string, q: { limit?: number; cursor?: string }) {
    await this.segmentRow(pr, id);
    return this.pageView(pr, { segment_id: id }, q);
  }

  /** Checks an audience names a list or segment of this account. */
  async check(pr: Principal, a: Audience): Promise<void> {
    if ('list_id' in a) await this.listRow(pr, a.list_id);
    else await this.segmentRow(pr, a.segment_id);
  }

  private async pageView(pr: Principal, a: Audience, q: { limit?: number; cursor?: string }): Promise<{ data: ContactView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 50;
    const out: ContactRow[] = [];
    let cursor = q.cursor ?? null;
    // A segment scans contacts in chunks and keeps the matching ones; stop at a page's worth.
    for (;;) {
      const { contacts, next } = await this.page(pr, a, cursor, Math.max(limit + 1, 200));
      out.push(...contacts);
      cursor = next;
      if (out.length > limit || next === null) break;
    }
    const page = out.slice(0, limit);
    return { data: page.map(toContactView), next_cursor: out.length > limit ? page[page.length - 1].id : null };
  }

  /**
   * One chunk of an audience in contact-id order after `cursor`: the matching contacts, and the
   * cursor to continue from (null when the audience is exhausted). A segment chunk may hold
   * fewer than `limit` contacts (or none) and still have more after it.
   */
  async page(pr: Principal, a: Audience, cursor: string | null, limit: number): Promise<{ contacts: ContactRow[]; next: string | null }> {
    const db = this.storage.db;
    if ('list_id' in a) {
      let q = db.selectFrom('list_members').innerJoin('contacts', 'contacts.id', 'list_members.contact_id').selectAll('contacts').where('list_members.list_id', '=', a.list_id);
      if (cursor) q = q.where('list_members.contact_id', '>', cursor);
      const rows = await q.orderBy('list_members.contact_id').limit(limit).execute();
      return { contacts: rows, next: rows.length === limit ? rows[rows.length - 1].id : null };
    }
    const seg = await this.segmentRow(pr, a.segment_id);
    const filter = JSON.parse(seg.filter) as SegmentFilter;
    let q = db.selectFrom('contacts').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (cursor) q = q.where('id', '>', cursor);
    const rows = await q.orderBy('id').limit(limit).execute();
    const matching: ContactRow[] = [];
    for (const r of rows) if (await this.matches(pr, r, filter)) matching.push(r);
    return { contacts: matching, next: rows.length === limit ? rows[rows.length - 1].id : null };
  }

  private async matches(pr: Principal, c: ContactRow, f: SegmentFilter): Promise<boolean> {
    if (f.tags || f.any_tags) {
      const tags = JSON.parse(c.tags) as string[];
      if (f.tags && !f.tags.every((t) => tags.includes(t))) return false;
      if (f.any_tags && !f.any_tags.some((t) => tags.includes(t))) return false;
    }
    if (f.fields) {
      const custom = JSON.parse(c.custom_fields) as Record<string, unknown>;
      for (const [k, v] of Object.entries(f.fields)) {
        const actual = k === 'name' || k === 'owner' || k === 'time_zone' ? c[k] : (custom[k] ?? null);
        if (actual !== v) return false;
      }
    }
    if (f.consent) {
      const db = this.storage.db;
      const suppressed = await this.consent.isSuppressed(db, pr.accountId, pr.mode, c.phone);
      const state = suppressed ? 'opted_out' : ((await this.consent.currentStatus(db, pr.accountId, pr.mode, c.phone, f.consent.purpose ?? 'marketing', f.consent.channel ?? 'sms')) ?? 'none');
      if (state !== f.consent.status) return false;
    }
    return true;
  }
}
