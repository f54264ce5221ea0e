// Contact imports from CSV: streamed through csv-parse, written in batches of 1,000 rows (one
// transaction each), with per-row errors and a progress figure kept on the `contact_imports` row
// while it runs (GET /v1/contacts/imports/{id}) and given to a callback (the CLI's bar).
//
// Columns: `phone` (required; also phone_number, mobile, number), name (or first_name and
// last_name), time_zone, owner, tags (separated by ; , or |), and consent_status with optional
// consent_purpose, consent_channel, consent_disclosure, consent_form_url, consent_ip and
// consent_collected_at, which append an `import` record to the consent ledger. Every other
// column becomes a custom field. A row that fails is reported and skipped; the others go in.
// Re-importing a number updates its contact: given fields replace, tags add up, custom fields merge.
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parse } from 'csv-parse';
import type { Clock } from '../clock.ts';
import type { ConsentService } from '../consent/consent-service.ts';
import { isValidTimeZone } from '../consent/time-zones.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { parseNumber } from '../messages/phone.ts';
import type { Storage, Tx } from '../storage/database.ts';
import { cleanText, type ContactRow } from './contact-service.ts';
import { transaction } from '../storage/transactions.ts';

export const IMPORT_MAX_BYTES = 256 * 1024 * 1024;
const BATCH = 1000;
const MAX_ERRORS_KEPT = 1000;
const PHONE_COLUMNS = ['phone', 'phone_number', 'mobile', 'number', 'msisdn'];
const KNOWN = new Set([...PHONE_COLUMNS, 'name', 'first_name', 'last_name', 'time_zone', 'timezone', 'owner', 'tags']);
const CONSENT_COLUMNS = ['consent_status', 'consent_purpose', 'consent_channel', 'consent_disclosure', 'consent_form_url', 'consent_ip', 'consent_collected_at'];
const CHANNELS = ['sms', 'mms', 'voice', 'rvm', 'all'];

export interface RowError {
  row: number;
  field: string;
  message: string;
}

export interface ImportView {
  id: string;
  object: 'contact_import';
  status: 'running' | 'completed' | 'failed';
  filename: string | null;
  bytes_total: number | null;
  bytes_read: number;
  /** Percent of the file read, when its size is known. */
  progress: number | null;
  rows_processed: number;
  created: number;
  updated: number;
  failed: number;
  errors: RowError[];
  started_at: string;
  finished_at: string | null;
}

export interface ImportProgress {
  bytesRead: number;
  bytesTotal: number | null;
  rows: number;
  created: number;
  updated: number;
  failed: number;
}

interface ParsedRow {
  line: number;
  phone: string;
  name?: string;
  time_zone?: string;
  owner?: string;
  tags?: string[];
  custom: Record<string, string>;
  consent?: { status: 'opted_in' | 'opted_out'; purpose: string; channel: string; evidence: Record<string, unknown> };
}

const zoneCache = new Map<string, boolean>();
const validZone = (z: string) => {
  let ok = zoneCache.get(z);
  if (ok === undefined) {
    ok = isValidTimeZone(z);
    if (zoneCache.size < 1000) zoneCache.set(z, ok);
  }
  return ok;
};

export class ContactImporter {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private consent: ConsentService,
  ) {}

  /**
   * Reads a CSV stream to the end and imports it. Throws VALIDATION_ERROR when the file has no
   * phone column or is not CSV, PAYLOAD_TOO_LARGE past IMPORT_MAX_BYTES; row problems never throw.
   */
  async run(
    target: { accountId: string; mode: string },
    input: Readable,
    opts: { filename?: string | null; bytesTotal?: number | null; onProgress?: (p: ImportProgress) => void } = {},
  ): Promise<ImportView> {
    const now = this.clock.now();
    const id = newId('import', now);
    const bytesTotal = opts.bytesTotal ?? null;
    await this.storage.db
      .insertInto('contact_imports')
      .values({ id, account_id: target.accountId, mode: target.mode, status: 'running', filename: opts.filename ?? null, bytes_total: bytesTotal, bytes_read: 0, rows_processed: 0, created: 0, updated: 0, failed: 0, errors: '[]', started_at: now, finished_at: null })
      .execute();

    const state = { bytes: 0, rows: 0, created: 0, updated: 0, failed: 0, errors: [] as RowError[] };
    const fail = (e: RowError) => {
      state.failed++;
      if (state.errors.length < MAX_ERRORS_KEPT) state.errors.push(e);
    };
    const progress = async () => {
      await this.storage.db
        .updateTable('contact_imports')
        .set({ bytes_read: state.bytes, rows_processed: state.rows, created: state.created, updated: state.updated, failed: state.failed, errors: JSON.stringify(state.errors) })
        .where('id', '=', id)
        .execute();
      opts.onProgress?.({ bytesRead: state.bytes, bytesTotal, rows: state.rows, created: state.created, updated: state.updated, failed: state.failed });
    };

    let headers: string[] = [];
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        state.bytes += chunk.length;
        if (state.bytes > IMPORT_MAX_BYTES) cb(new AppError('PAYLOAD_TOO_LARGE', `A contact import is at most ${IMPORT_MAX_BYTES / 1024 / 1024} MB.`, { max_bytes: IMPORT_MAX_BYTES }));
        else cb(null, chunk);
      },
    });
    const parser = parse({
      bom: true,
      trim: true,
      skip_empty_lines: true,
      relax_column_count: true,
      max_record_size: 64 * 1024,
      info: true,
      columns: (h: string[]) => {
        headers = h.map((x) => x.trim().toLowerCase().replace(/[\s-]+/g, '_'));
        if (!headers.some((x) => PHONE_COLUMNS.includes(x))) {
          throw validation('file', `The CSV has no phone column (its header is: ${h.slice(0, 20).join(', ').slice(0, 300)}).`, { columns: h.slice(0, 50) });
        }
        return headers;
      },
    });

    let batch: ParsedRow[] = [];
    const consume = async (source: AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) => {
      for await (const { record, info } of source) {
        state.rows++;
        const parsed = this.parseRow(record, info.lines, fail);
        if (parsed) batch.push(parsed);
        if (state.rows % BATCH === 0) {
          await this.writeBatch(target, id, batch, state);
          batch = [];
          await progress();
        }
      }
    };
    try {
      await pipeline(input, counter, parser, consume);
      if (batch.length) await this.writeBatch(target, id, batch, state);
      await progress();
    } catch (err) {
      await this.storage.db.updateTable('contact_imports').set({ status: 'failed', finished_at: this.clock.now(), bytes_read: state.bytes, rows_processed: state.rows, created: state.created, updated: state.updated, failed: state.failed, errors: JSON.stringify(state.errors) }).where('id', '=', id).execute();
      if (err instanceof AppError) throw err;
      const code = (err as { code?: string }).code;
      if (typeof code === 'string' && code.startsWith('CSV_')) {
        throw validation('file', `The file is not valid CSV: ${(err as Error).message}`, { import_id: id, rows_processed: state.rows, created: state.created, updated: state.updated });
      }
      throw err;
    }
    await this.storage.db.updateTable('contact_imports').set({ status: 'completed', finished_at: this.clock.now() }).where('id', '=', id).execute();
    return this.get(target, id);
  }

  private parseRow(r: Record<string, string>, line: number, fail: (e: RowError) => void): ParsedRow | null {
    const phoneCol = PHONE_COLUMNS.find((c) => r[c] !== undefined && r[c] !== '');
    if (!phoneCol) {
      fail({ row: line, field: 'phone', message: 'phone is empty.' });
      return null;
    }
    const phone = parseNumber(r[phoneCol]);
    if (!phone) {
      fail({ row: line, field: 'phone', message: `${r[phoneCol].slice(0, 40)} is not a valid phone number.` });
      return null;
    }
    const out: ParsedRow = { line, phone: phone.e164, custom: {} };
    const name = r.name || [r.first_name, r.last_name].filter(Boolean).join(' ');
    if (name) out.name = cleanText(name, 200);
    const tz = r.time_zone || r.timezone;
    if (tz) {
      if (!validZone(tz)) {
        fail({ row: line, field: 'time_zone', message: `${tz.slice(0, 60)} is not an IANA time zone.` });
        return null;
      }
      out.time_zone = tz;
    }
    if (r.owner) {
      if (!/^[A-Za-z0-9_.:@+-]{1,100}$/.test(r.owner)) {
        fail({ row: line, field: 'owner', message: 'owner must be 1 to 100 letters, digits and _ . : @ + -.' });
        return null;
      }
      out.owner = r.owner;
    }
    if (r.tags) out.tags = [...new Set(r.tags.split(/[;,|]/).map((t) => cleanText(t, 64)).filter(Boolean))].slice(0, 50);
    for (const [k, v] of Object.entries(r)) {
      if (v === '' || v === undefined || KNOWN.has(k) || CONSENT_COLUMNS.includes(k) || k === '' || k === '__proto__') continue;
      if (Object.keys(out.custom).length < 100) out.custom[k.slice(0, 64)] = cleanText(v, 1000);
    }
    if (r.consent_status) {
      const status = r.consent_status.toLowerCase().replace(/[\s-]/g, '_');
      const normalized = ['opted_in', 'yes', 'true', 'in'].includes(status) ? 'opted_in' : ['opted_out', 'no', 'false', 'out'].includes(status) ? 'opted_out' : null;
      if (!normalized) {
        fail({ row: line, field: 'consent_status', message: 'consent_status must be opted_in or opted_out.' });
        return null;
      }
      const purpose = (r.consent_purpose || 'marketing').toLowerCase();
      const channel = (r.consent_channel || 'all').toLowerCase();
      if (!/^[a-z0-9][a-z0-9_.-]{0,63}$/.test(purpose)) {
        fail({ row: line, field: 'consent_purpose', message: 'consent_purpose must be transactional, marketing, all or a list name.' });
        return null;
      }
      if (!CHANNELS.includes(channel)) {
        fail({ row: line, field: 'consent_channel', message: `consent_channel must be one of ${CHANNELS.join(', ')}.` });
        return null;
      }
      const evidence: Record<string, unknown> = { row: line };
      if (r.consent_disclosure) evidence.disclosure = cleanText(r.consent_disclosure, 2000);
      if (r.consent_form_url) evidence.form_url = cleanText(r.consent_form_url, 2000);
      if (r.consent_ip) evidence.ip = cleanText(r.consent_ip, 64);
      if (r.consent_collected_at) evidence.collected_at = cleanText(r.consent_collected_at, 64);
      out.consent = { status: normalized, purpose, channel, evidence };
    }
    return out;
  }

  private async writeBatch(target: { accountId: string; mode: string }, importId: string, rows: ParsedRow[], state: { created: number; updated: number }): Promise<void> {
    if (rows.length === 0) return;
    const now = this.clock.now();
    // The same number twice in a batch: later rows add to the earlier one.
    const byPhone = new Map<string, ParsedRow>();
    for (const r of rows) {
      const prev = byPhone.get(r.phone);
      byPhone.set(r.phone, prev ? mergeRows(prev, r) : r);
    }
    await transaction(this.storage.db, async (tx) => {
      const existing = new Map<string, ContactRow>();
      const phones = [...byPhone.keys()];
      for (let i = 0; i < phones.length; i += 500) {
        const found = await tx.selectFrom('contacts').selectAll().where('account_id', '=', target.accountId).where('mode', '=', target.mode).where('phone', 'in', phones.slice(i, i + 500)).execute();
        for (const c of found) existing.set(c.phone, c);
      }
      const fresh: ContactRow[] = [];
      for (const r of byPhone.values()) {
        const old = existing.get(r.phone);
        if (!old) {
          fresh.push({
            id: newId('contact', now),
            account_id: target.accountId,
            mode: target.mode,
            phone: r.phone,
            name: r.name ?? null,
            time_zone: r.time_zone ?? null,
            owner: r.owner ?? null,
            tags: JSON.stringify(r.tags ?? []),
            custom_fields: JSON.stringify(r.custom),
            created_at: now,
            updated_at: now,
          });
          continue;
        }
        await tx
          .updateTable('contacts')
          .set({
            name: r.name ?? old.name,
            time_zone: r.time_zone ?? old.time_zone,
            owner: r.owner ?? old.owner,
            tags: JSON.stringify([...new Set([...JSON.parse(old.tags), ...(r.tags ?? [])])].slice(0, 50)),
            custom_fields: JSON.stringify({ ...JSON.parse(old.custom_fields), ...r.custom }),
            updated_at: now,
          })
          .where('id', '=', old.id)
          .execute();
        state.updated++;
      }
      for (let i = 0; i < fresh.length; i += 200) await tx.insertInto('contacts').values(fresh.slice(i, i + 200)).execute();
      state.created += fresh.length;
      for (const r of rows) {
        if (!r.consent) continue;
        await this.recordConsent(tx, target, importId, r);
      }
    });
  }

  private async recordConsent(tx: Tx, target: { accountId: string; mode: string }, importId: string, r: ParsedRow): Promise<void> {
    const c = r.consent!;
    await this.consent.record(tx, {
      accountId: target.accountId,
      mode: target.mode,
      phone: r.phone,
      status: c.status,
      purpose: c.purpose,
      channel: c.channel,
      source: 'import',
      evidence: { ...c.evidence, import_id: importId },
    });
  }

  async get(target: { accountId: string; mode: string }, id: string): Promise<ImportView> {
    const r = await this.storage.db.selectFrom('contact_imports').selectAll().where('id', '=', id).where('account_id', '=', target.accountId).where('mode', '=', target.mode).executeTakeFirst();
    if (!r) throw new AppError('NOT_FOUND', `No contact import ${id} in this account.`, { id });
    return toImportView(r);
  }

  async list(target: { accountId: string; mode: string }, limit = 20): Promise<ImportView[]> {
    const rows = await this.storage.db.selectFrom('contact_imports').selectAll().where('account_id', '=', target.accountId).where('mode', '=', target.mode).orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toImportView);
  }
}

function mergeRows(a: ParsedRow, b: ParsedRow): ParsedRow {
  return {
    line: a.line,
    phone: a.phone,
    name: b.name ?? a.name,
    time_zone: b.time_zone ?? a.time_zone,
    owner: b.owner ?? a.owner,
    tags: a.tags || b.tags ? [...new Set([...(a.tags ?? []), ...(b.tags ?? [])])] : undefined,
    custom: { ...a.custom, ...b.custom },
    consent: b.consent ?? a.consent,
  };
}

function toImportView(r: { id: string; status: string; filename: string | null; bytes_total: number | null; bytes_read: number; rows_processed: number; created: number; updated: number; failed: number; errors: string; started_at: number; finished_at: number | null }): ImportView {
  return {
    id: r.id,
    object: 'contact_import',
    status: r.status as ImportView['status'],
    filename: r.filename,
    bytes_total: r.bytes_total,
    bytes_read: r.bytes_read,
    progress: r.bytes_total ? Math.min(100, Math.round((r.bytes_read / r.bytes_total) * 1000) / 10) : r.status === 'completed' ? 100 : null,
    rows_processed: r.rows_processed,
    created: r.created,
    updated: r.updated,
    failed: r.failed,
    errors: JSON.parse(r.errors),
    started_at: new Date(r.started_at).toISOString(),
    finished_at: r.finished_at === null ? null : new Date(r.finished_at).toISOString(),
  };
}
