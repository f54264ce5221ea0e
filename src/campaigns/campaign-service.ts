// Campaigns (CONTRACT §11): one text to an audience, sent deliberately.
//
// Words used here and in campaign-runner.ts:
//   campaign   — draft → scheduled (start_at ahead) → running ⇄ paused → completed; or canceled.
//   recipient  — one row per person (campaign_recipients), numbered by `seq`. The recipient row is
//                the campaign's unit of work: pending → queued (it has a message) | suppressed (a
//                consent, suppression or number check refused it) | failed (its text could not
//                be rendered) | canceled. Nothing about a campaign's progress lives only in memory.
//   expansion  — turning a list or segment into recipient rows, in chunks, by the runner (a CSV
//                audience is expanded when the campaign is created).
//   release    — rendering a pending recipient's text and accepting its message through
//                MessageService.prepare/commit, the same checks as any API message. The message's
//                idempotency key is `campaign:{id}:{seq}`, so a release repeated after a crash
//                finds the message already made and never sends twice.
//   validity   — how long a released message may wait to go out (default 2 h, the guide's rule
//                for bulk jobs): after that it expires instead of arriving late.
import { parse as parseCsv } from 'csv-parse/sync';
import { sql } from 'kysely';
import type { AudienceService } from '../audiences/audience-service.ts';
import { recordBy } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { parseHhMm } from '../consent/time-zones.ts';
import { contactVariables } from '../templates/template-service.ts';
import type { TemplateService } from '../templates/template-service.ts';
import { compile } from '../templates/template-render.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { CHANNELS, PURPOSES } from '../messages/message-service.ts';
import { parseNumber } from '../messages/phone.ts';
import { ConcurrentChangeError, type StatusMachine } from '../messages/status-machine.ts';
import type { Executor, Storage } from '../storage/database.ts';
import { transaction } from '../storage/transactions.ts';
import type { CampaignsTable, CampaignRecipientsTable } from '../storage/schema.ts';
import { linksIn, type LinkService } from './campaign-links.ts';

export type CampaignRow = CampaignsTable;
export type RecipientRow = CampaignRecipientsTable;

export const CAMPAIGN_STATUSES = ['draft', 'scheduled', 'running', 'paused', 'completed', 'canceled'] as const;
/** Statuses the runner works on. */
export const ACTIVE_STATUSES = ['scheduled', 'running', 'paused'];
const MAX_CSV_ROWS = 1_000_000;
const MAX_RATE = 1_000_000;
/** Messages of a campaign that are not yet final: what pause holds and cancel cancels. */
const WAITING = ['scheduled', 'queued'];

export interface CampaignSettings {
  defaultValiditySeconds: number;
}

export interface CampaignStats {
  total: number;
  queued: number;
  sent: number;
  delivered: number;
  failed: number;
  failed_by_class: Record<string, number>;
  suppressed: number;
  expired: number;
  canceled: number;
  replies: number;
  clicks: number;
}

export interface CampaignView {
  id: string;
  object: 'campaign';
  name: string;
  status: string;
  audience: Record<string, unknown>;
  template_id: string | null;
  template_version: number | null;
  body: string;
  channel: string;
  purpose: string;
  from: string | null;
  start_at: string | null;
  rate_per_minute: number | null;
  send_window: { start: string; end: string } | null;
  validity_period: number;
  stats: CampaignStats;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The principal a campaign's messages are accepted under: its account and mode. */
export const campaignPrincipal = (c: CampaignRow): Principal => ({ accountId: c.account_id, mode: c.mode as Principal['mode'], scopes: ['campaigns:send'], kind: 'api_key', credentialId: `campaign:${c.id}` });

/** The recipients of a CSV text: a `phone` column, every other column a template variable. */
export function parseAudienceCsv(text: string): Array<{ phone: string; variables: Record<string, string> }> {
  let records: Record<string, string>[];
  try {
    records = parseCsv(text, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true, relax_column_count: true, max_record_size: 10_000 });
  } catch (err) {
    throw validation('audience.csv', `The CSV could not be read: ${(err as Error).message}`);
  }
  if (records.length === 0) throw validation('audience.csv', 'The CSV has no rows: give a header line with a phone column, then one line per recipient.');
  if (!('phone' in records[0])) throw validation('audience.csv', 'The CSV needs a phone column.', { columns: Object.keys(records[0]) });
  if (records.length > MAX_CSV_ROWS) throw validation('audience.csv', `A CSV audience has at most ${MAX_CSV_ROWS} rows.`);
  const seen = new Set<string>();
  const out: Array<{ phone: string; variables: Record<string, string> }> = [];
  for (const r of records) {
    const { phone: raw = '', ...rest } = r;
    // A number that does not parse is kept as written: its release is refused as INVALID_NUMBER
    // and counted as suppressed, which is what the sender needs to see.
    const phone = parseNumber(raw)?.e164 ?? raw;
    if (seen.has(phone)) continue;
    seen.add(phone);
    const variables: Record<string, string> = {};
    for (const [k, v] of Object.entries(rest)) if (k !== '__proto__' && k !== 'constructor' && k !== 'prototype' && v !== undefined && v !== '') variables[k] = v;
    out.push({ phone, variables });
  }
  return out;
}

/** A recipient row as it starts: pending, due at once. */
export function pendingRecipient(campaignId: string, seq: number, phone: string, contactId: string | null, variables: Record<string, unknown>, now: number): RecipientRow {
  return { campaign_id: campaignId, seq, phone, contact_id: contactId, variables: JSON.stringify(variables), status: 'pending', release_at: 0, message_id: null, error_code: null, error_message: null, updated_at: now };
}

export class CampaignService {
  private wakeRunner: () => void = () => {};

  constructor(
    private storage: Storage,
    private clock: Clock,
    private settings: CampaignSettings,
    private templates: TemplateService,
    private audiences: AudienceService,
    private links: LinkService,
    private statuses: StatusMachine,
  ) {}

  onWork(fn: () => void): void {
    this.wakeRunner = fn;
  }

  async create(pr: Principal, input: unknown): Promise<CampaignView> {
    if (!isObject(input)) throw validation('body', 'The request body must be a JSON object.');
    const b = input;
    const now = this.clock.now();
    if (typeof b.name !== 'string' || b.name.trim() === '' || b.name.length > 200) throw validation('name', 'name must be a non-empty string of at most 200 characters.');

    const channel = b.channel ?? 'sms';
    if (typeof channel !== 'string' || !(CHANNELS as readonly string[]).includes(channel) || channel === 'mms') throw validation('channel', 'channel must be sms, voice or rvm.');
    const purpose = b.purpose ?? 'transactional';
    if (typeof purpose !== 'string' || !(PURPOSES as readonly string[]).includes(purpose)) throw validation('purpose', `purpose must be one of ${PURPOSES.join(', ')}.`);

    // The text: a template (pinned at its current version) or the campaign's own Liquid body.
    if ((b.template_id === undefined) === (b.body === undefined)) throw validation('body', 'Give exactly one of template_id and body.');
    let body: string;
    let templateId: string | null = null;
    let templateVersion: number | null = null;
    if (b.template_id !== undefined) {
      if (typeof b.template_id !== 'string') throw validation('template_id', 'template_id must be a string.');
      const t = await this.templates.resolve(pr, { id: b.template_id }, 'template_id');
      body = t.body;
      templateId = t.id;
      templateVersion = t.version;
    } else {
      if (typeof b.body !== 'string' || b.body.trim() === '' || b.body.length > 1600) throw validation('body', 'body must be a non-empty string of at most 1,600 characters.');
      body = b.body;
    }
    const uses = compile(body, templateId ? 'template_id' : 'body').uses;

    let from: string | null = null;
    if (b.from !== undefined && b.from !== null) {
      if (typeof b.from !== 'string') throw validation('from', 'from must be a string.');
      // Checked now rather than refused for every recipient later.
      from = parseNumber(b.from)?.e164 ?? b.from.trim();
      const sender = await this.storage.db.selectFrom('senders').select('address').where('account_id', '=', pr.accountId).where('address', '=', from).executeTakeFirst();
      if (!sender) throw validation('from', `${from} is not a sender of this account.`, { value: from });
    }
    let startAt: number | null = null;
    if (b.start_at !== undefined && b.start_at !== null) {
      if (typeof b.start_at !== 'string' || !/^\d{4}-\d{2}-\d{2}T/.test(b.start_at) || Number.isNaN(Date.parse(b.start_at))) throw validation('start_at', 'start_at must be an ISO 8601 date and time.');
      startAt = Date.parse(b.start_at);
    }
    let rate: number | null = null;
    if (b.rate_per_minute !== undefined && b.rate_per_minute !== null) {
      if (typeof b.rate_per_minute !== 'number' || !Number.isInteger(b.rate_per_minute) || b.rate_per_minute < 1 || b.rate_per_minute > MAX_RATE) throw validation('rate_per_minute', `rate_per_minute must be a whole number from 1 to ${MAX_RATE}, or null for no limit.`);
      rate = b.rate_per_minute;
    }
    let window: { start: string; end: string } | null = null;
    if (b.send_window !== undefined && b.send_window !== null) {
      const w = b.send_window;
      if (!isObject(w) || typeof w.start !== 'string' || typeof w.end !== 'string') throw validation('send_window', 'send_window must be {"start": "HH:MM", "end": "HH:MM"} in the recipient\'s local time.');
      for (const k of ['start', 'end'] as const) {
        try {
          parseHhMm(w[k] as string);
        } catch {
          throw validation(`send_window.${k}`, `send_window.${k} must be HH:MM (24-hour).`);
        }
      }
      window = { start: w.start, end: w.end };
    }
    let validity = this.settings.defaultValiditySeconds;
    if (b.validity_period !== undefined && b.validity_period !== null) {
      if (typeof b.validity_period !== 'number' || !Number.isInteger(b.validity_period) || b.validity_period < 60 || b.validity_period > 30 * 86400) throw validation('validity_period', 'validity_period must be a whole number of seconds from 60 to 2,592,000.');
      validity = b.validity_period;
    }
    const trackLinks = b.track_links ?? true;
    if (typeof trackLinks !== 'boolean') throw validation('track_links', 'track_links must be true or false.');

    // The audience, checked whole before anything is written.
    const a = b.audience;
    if (!isObject(a)) throw validation('audience', 'audience must be {"list_id"}, {"segment_id"} or {"csv"}.');
    let audience: Record<string, unknown>;
    let csvRows: ReturnType<typeof parseAudienceCsv> | null = null;
    if (typeof a.list_id === 'string') {
      audience = { list_id: a.list_id };
      await this.audiences.check(pr, { list_id: a.list_id });
    } else if (typeof a.segment_id === 'string') {
      audience = { segment_id: a.segment_id };
      await this.audiences.check(pr, { segment_id: a.segment_id });
    } else if (typeof a.csv === 'string') {
      csvRows = parseAudienceCsv(a.csv);
      audience = { csv: true, rows: csvRows.length };
    } else throw validation('audience', 'audience must be {"list_id"}, {"segment_id"} or {"csv": "phone,name\\n…"}.');

    const row: CampaignRow = {
      id: newId('cmp', now),
      account_id: pr.accountId,
      mode: pr.mode,
      name: b.name.trim(),
      status: 'draft',
      audience: JSON.stringify(audience),
      template_id: templateId,
      template_version: templateVersion,
      body,
      variables: JSON.stringify(uses),
      channel,
      purpose,
      from_addr: from,
      start_at: startAt,
      rate_per_minute: rate,
      send_window: window ? JSON.stringify(window) : null,
      validity_s: validity,
      total: csvRows?.length ?? 0,
      expanded: csvRows ? 1 : 0,
      expand_cursor: null,
      released: 0,
      pace_base_at: null,
      pace_base_count: 0,
      created_at: now,
      updated_at: now,
      started_at: null,
      completed_at: null,
    };
    if (csvRows) await this.insertCsvRecipients(pr, row.id, csvRows, now);
    await this.storage.db.transaction().execute(async (tx) => {
      await tx.insertInto('campaigns').values(row).execute();
      if (trackLinks && this.links.enabled) await this.links.create(tx, row.id, linksIn(body));
    });
    return this.view(row);
  }

  /**
   * Writes a CSV audience in short transactions (a few thousand rows each), so a 100,000-row
   * upload never holds the database's write lock long enough to stall other accounts. The
   * campaign row is written after them: until then the rows belong to nothing anyone can see.
   */
  private async insertCsvRecipients(pr: Principal, campaignId: string, rows: ReturnType<typeof parseAudienceCsv>, now: number): Promise<void> {
    const db = this.storage.db;
    for (let i = 0; i < rows.length; i += 2000) {
      const chunk = rows.slice(i, i + 2000);
      // Known contacts lend their fields to the template; the CSV's own columns win.
      const contacts = new Map<string, Awaited<ReturnType<typeof this.contactsByPhone>>[number]>();
      for (const c of await this.contactsByPhone(pr, chunk.map((r) => r.phone))) contacts.set(c.phone, c);
      const values: RecipientRow[] = chunk.map((r, j) => {
        const contact = contacts.get(r.phone);
        return pendingRecipient(campaignId, i + j, r.phone, contact?.id ?? null, contact ? { ...contactVariables(contact), ...r.variables } : { phone: r.phone, ...r.variables }, now);
      });
      await db.transaction().execute(async (tx) => {
        for (let k = 0; k < values.length; k += 250) await tx.insertInto('campaign_recipients').values(values.slice(k, k + 250)).execute();
      });
    }
  }

  private async contactsByPhone(pr: Principal, phones: string[]) {
    const out = [];
    for (let i = 0; i < phones.length; i += 500) {
      out.push(...(await this.storage.db.selectFrom('contacts').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).where('phone', 'in', phones.slice(i, i + 500)).execute()));
    }
    return out;
  }

  async getRow(pr: Principal, id: string, db: Executor = this.storage.db): Promise<CampaignRow> {
    const row = await db.selectFrom('campaigns').selectAll().where('id', '=', id).where('account_id', '=', pr.accountId).where('mode', '=', pr.mode).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No campaign ${id} in this account.`, { id });
    return row;
  }

  async get(pr: Principal, id: string): Promise<CampaignView> {
    return this.view(await this.getRow(pr, id));
  }

  async list(pr: Principal, q: { limit?: number; cursor?: string }) {
    const limit = q.limit ?? 50;
    let query = this.storage.db.selectFrom('campaigns').selectAll().where('account_id', '=', pr.accountId).where('mode', '=', pr.mode);
    if (q.cursor !== undefined) query = query.where('id', '<', q.cursor);
    const rows = await query.orderBy('id', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { data: await Promise.all(page.map((r) => this.view(r))), next_cursor: rows.length > limit ? page[page.length - 1].id : null };
  }

  /** Moves a campaign from one of `from` to `to`, guarded so two calls cannot both win. */
  private async move(pr: Principal, id: string, from: string[], to: string, patch: Partial<CampaignRow> = {}, db: Executor = this.storage.db): Promise<CampaignRow> {
    const row = await this.getRow(pr, id, db);
    if (!from.includes(row.status)) throw validation('status', `A ${row.status} campaign cannot be moved to ${to}.`, { status: row.status, allowed_from: from });
    const now = this.clock.now();
    const next = { ...row, ...patch, status: to, updated_at: now };
    const res = await db.updateTable('campaigns').set({ ...patch, status: to, updated_at: now }).where('id', '=', id).where('status', '=', row.status).executeTakeFirst();
    if (Number(res.numUpdatedRows) !== 1) throw validation('status', 'The campaign changed at the same time; read it again.', { id });
    return next;
  }

  async start(pr: Principal, id: string): Promise<CampaignView> {
    const now = this.clock.now();
    const row = await this.getRow(pr, id);
    const later = row.start_at !== null && row.start_at > now;
    const next = await transaction(this.storage.db, async (tx) => {
      const moved = await this.move(pr, id, ['draft'], later ? 'scheduled' : 'running', later ? {} : { started_at: now, pace_base_at: now, pace_base_count: 0 }, tx);
      await recordBy(tx, pr, { accountId: pr.accountId, action: 'campaign.started', target: { type: 'campaign', id }, details: { name: row.name, status: moved.status, start_at: row.start_at === null ? null : new Date(row.start_at).toISOString() }, at: now });
      return moved;
    });
    this.wakeRunner();
    return this.view(next);
  }

  /** Stops new submits at once: released messages that have not gone out wait, held. */
  async pause(pr: Principal, id: string): Promise<CampaignView> {
    const next = await this.move(pr, id, ['scheduled', 'running'], 'paused');
    await this.holdMessages(id);
    return this.view(next);
  }

  async resume(pr: Principal, id: string): Promise<CampaignView> {
    const now = this.clock.now();
    const row = await this.getRow(pr, id);
    const later = row.start_at !== null && row.start_at > now && row.started_at === null;
    // Pacing starts afresh from now: a pause does not bank a burst.
    const next = await this.move(pr, id, ['paused'], later ? 'scheduled' : 'running', later ? {} : { started_at: row.started_at ?? now, pace_base_at: now, pace_base_count: row.released });
    await this.releaseHeld(id, now);
    this.wakeRunner();
    return this.view(next);
  }

  /** Nothing more goes out: pending recipients are canceled, waiting messages canceled through the status machine. */
  async cancel(pr: Principal, id: string): Promise<CampaignView> {
    const now = this.clock.now();
    const next = await this.move(pr, id, ['draft', 'scheduled', 'running', 'paused'], 'canceled', { completed_at: now });
    await this.cancelRemaining(id);
    return this.view(next);
  }

  /** Held messages have no due time: the dispatcher claims only messages whose time has come. */
  async holdMessages(campaignId: string): Promise<number> {
    const res = await this.storage.db
      .updateTable('messages')
      .set({ next_attempt_at: null })
      .where('id', 'in', (eb) => eb.selectFrom('campaign_recipients').select('message_id').where('campaign_id', '=', campaignId).where('status', '=', 'queued'))
      .where('status', 'in', WAITING)
      .where('next_attempt_at', 'is not', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  private async releaseHeld(campaignId: string, now: number): Promise<void> {
    await this.storage.db
      .updateTable('messages')
      .set({ next_attempt_at: sql<number>`case when send_at is not null and send_at > ${now} then send_at else ${now} end` })
      .where('id', 'in', (eb) => eb.selectFrom('campaign_recipients').select('message_id').where('campaign_id', '=', campaignId).where('status', '=', 'queued'))
      .where('status', 'in', WAITING)
      .where('next_attempt_at', 'is', null)
      .execute();
  }

  /** Cancels pending recipients and every waiting message of the campaign. Safe to repeat. */
  async cancelRemaining(campaignId: string): Promise<number> {
    const db = this.storage.db;
    const now = this.clock.now();
    await db.updateTable('campaign_recipients').set({ status: 'canceled', updated_at: now }).where('campaign_id', '=', campaignId).where('status', '=', 'pending').execute();
    let canceled = 0;
    // Bounded: each round cancels up to 500; a round that lost a race with the dispatcher is retried.
    for (let round = 0; round < 10_000; round++) {
      try {
        const n = await db.transaction().execute(async (tx) => {
          const rows = await tx
            .selectFrom('messages')
            .selectAll()
            .where('id', 'in', (eb) => eb.selectFrom('campaign_recipients').select('message_id').where('campaign_id', '=', campaignId).where('status', '=', 'queued'))
            .where('status', 'in', WAITING)
            .limit(500)
            .execute();
          for (const m of rows) await this.statuses.transition(tx, m, 'canceled', { at: now, data: { reason: 'campaign_canceled', campaign_id: campaignId }, patch: { next_attempt_at: null } });
          return rows.length;
        });
        canceled += n;
        if (n === 0) break;
      } catch (err) {
        if (!(err instanceof ConcurrentChangeError)) throw err;
      }
    }
    return canceled;
  }

  async stats(c: CampaignRow): Promise<CampaignStats> {
    const db = this.storage.db;
    const s: CampaignStats = { total: c.total, queued: 0, sent: 0, delivered: 0, failed: 0, failed_by_class: {}, suppressed: 0, expired: 0, canceled: 0, replies: 0, clicks: 0 };
    const fail = (cls: string, n: number) => {
      s.failed += n;
      s.failed_by_class[cls] = (s.failed_by_class[cls] ?? 0) + n;
    };
    const recipients = await db
      .selectFrom('campaign_recipients')
      .select(['status', 'error_code', (eb) => eb.fn.countAll<number>().as('n')])
      .where('campaign_id', '=', c.id)
      .where('status', '!=', 'queued')
      .groupBy(['status', 'error_code'])
      .execute();
    for (const r of recipients) {
      const n = Number(r.n);
      if (r.status === 'pending') s.queued += n;
      else if (r.status === 'suppressed') s.suppressed += n;
      else if (r.status === 'failed') fail(r.error_code ?? 'UNKNOWN_ERROR', n);
      else if (r.status === 'canceled') s.canceled += n;
    }
    const messages = await db
      .selectFrom('campaign_recipients')
      .innerJoin('messages', 'messages.id', 'campaign_recipients.message_id')
      .select(['messages.status', 'messages.error_class', (eb) => eb.fn.countAll<number>().as('n')])
      .where('campaign_recipients.campaign_id', '=', c.id)
      .where('campaign_recipients.status', '=', 'queued')
      .groupBy(['messages.status', 'messages.error_class'])
      .execute();
    for (const m of messages) {
      const n = Number(m.n);
      switch (m.status) {
        case 'scheduled':
        case 'queued':
        case 'sending':
          s.queued += n;
          break;
        case 'delivered':
          s.sent += n;
          s.delivered += n;
          break;
        case 'sent':
          s.sent += n;
          break;
        case 'undelivered':
          s.sent += n;
          fail(m.error_class ?? 'UNKNOWN_ERROR', n);
          break;
        case 'failed':
          fail(m.error_class ?? 'UNKNOWN_ERROR', n);
          break;
        case 'expired':
          s.expired += n;
          break;
        case 'canceled':
          // Canceled at claim time because the recipient opted out in between: suppressed.
          if (m.error_class === 'OPTED_OUT') s.suppressed += n;
          else s.canceled += n;
          break;
      }
    }
    if (c.started_at !== null) {
      // In two steps, not one join: joined on the phone, SQLite picked the (account, mode) index
      // for messages and scanned every message of the account once per recipient — hours for a
      // 100,000-recipient campaign. The numbers that wrote in are few; look those up by phone.
      const senders = await db
        .selectFrom('messages')
        .select('from_addr')
        .distinct()
        .where('account_id', '=', c.account_id)
        .where('mode', '=', c.mode)
        .where('direction', '=', 'inbound')
        .where('created_at', '>=', c.started_at)
        .execute();
      const phones = senders.map((r) => r.from_addr).filter((p): p is string => p !== null);
      s.replies = 0;
      for (let i = 0; i < phones.length; i += 500) {
        const replied = await db
          .selectFrom('campaign_recipients')
          .select((eb) => eb.fn.count<number>('seq').distinct().as('n'))
          .where('campaign_id', '=', c.id)
          .where('status', '=', 'queued')
          .where('phone', 'in', phones.slice(i, i + 500))
          .executeTakeFirstOrThrow();
        s.replies += Number(replied.n);
      }
    }
    const clicks = await db.selectFrom('link_clicks').select((eb) => eb.fn.countAll<number>().as('n')).where('campaign_id', '=', c.id).executeTakeFirstOrThrow();
    s.clicks = Number(clicks.n);
    return s;
  }

  async view(c: CampaignRow): Promise<CampaignView> {
    return {
      id: c.id,
      object: 'campaign',
      name: c.name,
      status: c.status,
      audience: JSON.parse(c.audience),
      template_id: c.template_id,
      template_version: c.template_version,
      body: c.body,
      channel: c.channel,
      purpose: c.purpose,
      from: c.from_addr,
      start_at: iso(c.start_at),
      rate_per_minute: c.rate_per_minute,
      send_window: c.send_window ? JSON.parse(c.send_window) : null,
      validity_period: c.validity_s,
      stats: await this.stats(c),
      created_at: iso(c.created_at)!,
      started_at: iso(c.started_at),
      completed_at: iso(c.completed_at),
    };
  }

  /** Per-recipient results in campaign order; `status` is the message's once it has one. */
  async recipients(pr: Principal, id: string, q: { limit?: number; cursor?: string; status?: string }) {
    await this.getRow(pr, id);
    const limit = q.limit ?? 100;
    let query = this.storage.db
      .selectFrom('campaign_recipients')
      .leftJoin('messages', 'messages.id', 'campaign_recipients.message_id')
      .select([
        'campaign_recipients.seq',
        'campaign_recipients.phone',
        'campaign_recipients.contact_id',
        'campaign_recipients.status as recipient_status',
        'campaign_recipients.message_id',
        'campaign_recipients.error_code',
        'campaign_recipients.error_message',
        'messages.status as message_status',
        'messages.error_class',
        'messages.error_message as message_error',
        'messages.updated_at',
      ])
      .where('campaign_recipients.campaign_id', '=', id);
    if (q.cursor !== undefined) {
      if (!/^\d{1,9}$/.test(q.cursor)) throw validation('cursor', 'cursor is not one this API returned.');
      query = query.where('campaign_recipients.seq', '>', Number(q.cursor));
    }
    if (q.status !== undefined) {
      const recipientStatuses = ['pending', 'suppressed', 'failed', 'canceled'];
      query = recipientStatuses.includes(q.status) ? query.where('campaign_recipients.status', '=', q.status) : query.where('messages.status', '=', q.status);
    }
    const rows = await query.orderBy('campaign_recipients.seq').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return {
      data: page.map((r) => ({
        seq: r.seq,
        phone: r.phone,
        contact_id: r.contact_id,
        status: r.message_status ?? r.recipient_status,
        message_id: r.message_id,
        error: r.error_code ? { code: r.error_code, message: r.error_message ?? '' } : r.error_class ? { code: r.error_class, message: r.message_error ?? '' } : null,
      })),
      next_cursor: rows.length > limit ? String(page[page.length - 1].seq) : null,
    };
  }
}
