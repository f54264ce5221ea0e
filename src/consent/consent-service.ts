// The consent ledger and the suppression list. Consent records are append-only: never updated,
// never deleted; the current state of a number is derived from its latest records. The
// `suppressions` table is that derivation for the question the send path asks on every message
// ("has this number opted out of everything?"), kept in step in the same transaction.
import { recordBy, type AuditContext } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { maskPhonesIn } from '../logger.ts';
import { AppError, validation } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import type { Executor, Storage, Tx } from '../storage/database.ts';
import { readMessagingSettings, type MessagingSettings } from './messaging-settings.ts';
import { countryOf, nextAllowed, zoneForNumber } from './time-zones.ts';

export type ConsentStatus = 'opted_in' | 'opted_out';
export const CONSENT_SOURCES = ['keyword', 'api', 'import', 'web_form', 'carrier', 'system'] as const;

export interface ConsentInput {
  accountId: string;
  mode: string;
  phone: string;
  status: ConsentStatus;
  purpose: string;
  channel: string;
  source: string;
  evidence: Record<string, unknown>;
  /** Who makes the change, for the audit log: a principal or context; none is the source itself (keyword, carrier, import). */
  by?: Principal | AuditContext;
}

/** The consent state of a set of numbers, read at once (see ConsentService.view). */
export interface ConsentView {
  suppression(phone: string): { reason: string; source: string } | undefined;
  status(phone: string, purpose: string, channel: string): ConsentStatus | null;
}

/**
 * Derives a number's consent for one purpose from its records, newest first (already limited
 * to that purpose or `all`, and that channel or `all`): a record for this very purpose decides,
 * unless a later blanket (`all`) opt-out overrides it.
 */
function deriveStatus(rows: Iterable<{ status: string; purpose: string }>, purpose: string): ConsentStatus | null {
  let blanket: string | undefined;
  for (const r of rows) {
    if (r.purpose === 'all') {
      blanket ??= r.status;
      continue;
    }
    if (blanket === 'opted_out') return 'opted_out';
    return r.status as ConsentStatus;
  }
  return blanket === 'opted_out' || purpose === 'all' ? ((blanket as ConsentStatus | undefined) ?? null) : null;
}

export type ClaimVerdict = { action: 'cancel'; reason: string } | { action: 'hold'; until: number };

export interface ConsentRecordView {
  id: number;
  phone: string;
  status: string;
  purpose: string;
  channel: string;
  source: string;
  evidence: Record<string, unknown>;
  created_at: string;
}

export class ConsentService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async suppression(db: Executor, accountId: string, mode: string, phone: string): Promise<{ reason: string; source: string } | undefined> {
    return db
      .selectFrom('suppressions')
      .select(['reason', 'source'])
      .where('account_id', '=', accountId)
      .where('mode', '=', mode)
      .where('phone', '=', phone)
      .executeTakeFirst();
  }

  async isSuppressed(db: Executor, accountId: string, mode: string, phone: string): Promise<boolean> {
    return (await this.suppression(db, accountId, mode, phone)) !== undefined;
  }

  async suppressedAmong(db: Executor, accountId: string, mode: string, phones: string[]): Promise<Set<string>> {
    if (phones.length === 0) return new Set();
    const rows = await db
      .selectFrom('suppressions')
      .select('phone')
      .where('account_id', '=', accountId)
      .where('mode', '=', mode)
      .where('phone', 'in', [...new Set(phones)])
      .execute();
    return new Set(rows.map((r) => r.phone));
  }

  /**
   * The derived consent of a number for one purpose (marketing or a named list) and channel.
   * Newest first: a record for this very purpose decides, unless a later blanket (`all`)
   * opt-out overrides it. A blanket opt-in (START) only lifts a blanket opt-out: it restores
   * what the number had agreed to before, and never grants marketing consent by itself.
   */
  async currentStatus(db: Executor, accountId: string, mode: string, phone: string, purpose: string, channel: string): Promise<ConsentStatus | null> {
    const rows = await db
      .selectFrom('consent_records')
      .select(['status', 'purpose'])
      .where('account_id', '=', accountId)
      .where('mode', '=', mode)
      .where('phone', '=', phone)
      .where('purpose', 'in', [purpose, 'all'])
      .where('channel', 'in', [channel, 'all'])
      .orderBy('id', 'desc')
      .limit(1000)
      .execute();
    return deriveStatus(rows, purpose);
  }

  /**
   * Suppressions and consent records of many numbers in two queries, for checks made on many
   * messages at once (a batch): the same answers as suppression() and currentStatus().
   */
  async view(db: Executor, accountId: string, mode: string, phones: string[]): Promise<ConsentView> {
    const unique = [...new Set(phones)];
    const suppressed = new Map<string, { reason: string; source: string }>();
    const records = new Map<string, Array<{ status: string; purpose: string; channel: string }>>();
    for (let i = 0; i < unique.length; i += 500) {
      const chunk = unique.slice(i, i + 500);
      const suppressions = await db.selectFrom('suppressions').select(['phone', 'reason', 'source']).where('account_id', '=', accountId).where('mode', '=', mode).where('phone', 'in', chunk).execute();
      for (const s of suppressions) suppressed.set(s.phone, { reason: s.reason, source: s.source });
      const rows = await db
        .selectFrom('consent_records')
        .select(['phone', 'status', 'purpose', 'channel'])
        .where('account_id', '=', accountId)
        .where('mode', '=', mode)
        .where('phone', 'in', chunk)
        .orderBy('id', 'desc')
        .execute();
      for (const r of rows) {
        let list = records.get(r.phone);
        if (!list) records.set(r.phone, (list = []));
        list.push(r);
      }
    }
    return {
      suppression: (phone) => suppressed.get(phone),
      status: (phone, purpose, channel) =>
        deriveStatus(
          (records.get(phone) ?? []).filter((r) => (r.purpose === purpose || r.purpose === 'all') && (r.channel === channel || r.channel === 'all')),
          purpose,
        ),
    };
  }

  /**
   * The account rules that apply to an outbound message after consent: destination countries
   * (a blocked one is FILTERED) and, for marketing, quiet hours in the recipient's local time.
   * Returns when the message may go: `at` itself, or the next opening of the allowed window.
   */
  async outboundRules(
    db: Executor,
    m: { accountId: string; mode: string; to: string; purpose: string; at: number },
    known?: MessagingSettings,
  ): Promise<{ sendAt: number; heldFor: 'quiet_hours' | null; timeZone: string | null }> {
    const settings = known ?? (await readMessagingSettings(db, m.accountId));
    const country = countryOf(m.to);
    const { allow, block } = settings.countries;
    if (block.length || allow.length) {
      if (!country || block.includes(country) || (allow.length > 0 && !allow.includes(country))) {
        throw new AppError('FILTERED', `This account does not send to ${country ?? 'unknown countries'} (${m.to}).`, { to: m.to, country: country ?? null, reason: 'country_blocked' });
      }
    }
    if (m.purpose !== 'marketing' || !settings.quiet_hours.enabled) return { sendAt: m.at, heldFor: null, timeZone: null };
    const zone = await this.recipientZone(db, m.accountId, m.mode, m.to, settings.quiet_hours.fallback_time_zone);
    const sendAt = nextAllowed(m.at, zone, settings.quiet_hours.allowed_from, settings.quiet_hours.allowed_until);
    return { sendAt, heldFor: sendAt === m.at ? null : 'quiet_hours', timeZone: zone };
  }

  /** The contact's own zone, else the number's (area code or country), else the account's fallback. */
  async recipientZone(db: Executor, accountId: string, mode: string, phone: string, fallback: string): Promise<string> {
    const contact = await db.selectFrom('contacts').select('time_zone').where('account_id', '=', accountId).where('mode', '=', mode).where('phone', '=', phone).executeTakeFirst();
    if (contact?.time_zone) return contact.time_zone;
    const zone = zoneForNumber(phone);
    return zone === 'UTC' ? fallback : zone;
  }

  /**
   * Checks made again when the dispatcher claims messages, because consent and the clock move
   * after acceptance (the blanket suppression is the dispatcher's own check): a message whose
   * purpose or channel was opted out of since, or a marketing message whose consent is gone, is
   * canceled; a marketing message that would now land in quiet hours (a retry, a backlog) waits.
   * One query per account finds the few numbers with purpose- or channel-specific records; only
   * those, and marketing messages, are looked at one by one. Rows not in the answer may go.
   */
  async claimVerdicts(db: Executor, rows: Array<{ id: string; account_id: string; mode: string; to_addr: string; channel: string; purpose: string }>, now: number): Promise<Map<string, ClaimVerdict>> {
    const out = new Map<string, ClaimVerdict>();
    const groups = new Map<string, typeof rows>();
    for (const r of rows) {
      const k = `${r.account_id}\u0000${r.mode}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    for (const group of groups.values()) {
      const { account_id: accountId, mode } = group[0];
      const specific = await db
        .selectFrom('consent_records')
        .select('phone')
        .distinct()
        .where('account_id', '=', accountId)
        .where('mode', '=', mode)
        .where('phone', 'in', [...new Set(group.map((r) => r.to_addr))])
        .where((eb) => eb.or([eb('purpose', '!=', 'all'), eb('channel', '!=', 'all')]))
        .execute();
      const withRecords = new Set(specific.map((r) => r.phone));
      let settings: MessagingSettings | undefined;
      for (const row of group) {
        if (row.purpose !== 'marketing' && !withRecords.has(row.to_addr)) continue;
        const state = await this.currentStatus(db, accountId, mode, row.to_addr, row.purpose, row.channel);
        let verdict: ClaimVerdict | null = null;
        if (state === 'opted_out') verdict = { action: 'cancel', reason: `${row.purpose}_opt_out` };
        else if (row.purpose === 'marketing' && state !== 'opted_in') verdict = { action: 'cancel', reason: 'marketing_consent_missing' };
        if (verdict && (await this.isOptOutConfirmation(db, row.id))) verdict = null;
        if (!verdict && row.purpose === 'marketing') {
          settings ??= await readMessagingSettings(db, accountId);
          const rules = await this.outboundRules(db, { accountId, mode, to: row.to_addr, purpose: row.purpose, at: now }, settings).catch(() => null);
          if (rules && rules.sendAt > now) verdict = { action: 'hold', until: rules.sendAt };
        }
        if (verdict) out.set(row.id, verdict);
      }
    }
    return out;
  }

  /** The opt-out confirmation is the one message that may reach a suppressed number. */
  async isOptOutConfirmation(db: Executor, messageId: string): Promise<boolean> {
    const row = await db.selectFrom('keyword_replies').select('kind').where('message_id', '=', messageId).executeTakeFirst();
    return row?.kind === 'opt_out_confirmation';
  }

  /**
   * Appends a record and keeps the suppression list in step. An opt-out from everything
   * (purpose `all`) suppresses the number on every channel; an opt-in to `all` lifts it.
   * Fires contact.opted_out / contact.opted_in in the same transaction.
   */
  async record(tx: Tx, input: ConsentInput): Promise<number> {
    const now = this.clock.now();
    const inserted = await tx
      .insertInto('consent_records')
      .values({
        account_id: input.accountId,
        mode: input.mode,
        phone: input.phone,
        status: input.status,
        purpose: input.purpose,
        channel: input.channel,
        source: input.source,
        evidence: JSON.stringify(input.evidence),
        created_at: now,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (input.purpose === 'all' && input.channel === 'all') {
      if (input.status === 'opted_out') {
        await tx
          .insertInto('suppressions')
          .values({ account_id: input.accountId, mode: input.mode, phone: input.phone, reason: String(input.evidence.reason ?? 'opted_out'), source: input.source, created_at: now })
          .onConflict((oc) => oc.columns(['account_id', 'mode', 'phone']).doNothing())
          .execute();
      } else {
        await tx.deleteFrom('suppressions').where('account_id', '=', input.accountId).where('mode', '=', input.mode).where('phone', '=', input.phone).execute();
      }
    }
    await appendOutbox(tx, [
      {
        accountId: input.accountId,
        mode: input.mode,
        type: input.status === 'opted_out' ? 'contact.opted_out' : 'contact.opted_in',
        data: { phone: input.phone, status: input.status, purpose: input.purpose, channel: input.channel, source: input.source, consent_record_id: Number(inserted.id) },
        at: now,
      },
    ]);
    // The evidence stays out of the audit log: a keyword's evidence quotes the message.
    await recordBy(tx, input.by ?? { actor: { type: 'system', id: input.source }, ip: null }, {
      accountId: input.accountId,
      mode: input.mode,
      action: 'consent.changed',
      target: { type: 'phone', id: input.phone },
      details: { status: input.status, purpose: input.purpose, channel: input.channel, source: input.source, consent_record_id: Number(inserted.id) },
      at: now,
    });
    return Number(inserted.id);
  }

  async history(accountId: string, mode: string, phone: string): Promise<ConsentRecordView[]> {
    const rows = await this.storage.db
      .selectFrom('consent_records')
      .selectAll()
      .where('account_id', '=', accountId)
      .where('mode', '=', mode)
      .where('phone', '=', phone)
      .orderBy('id', 'asc')
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      phone: r.phone,
      status: r.status,
      purpose: r.purpose,
      channel: r.channel,
      source: r.source,
      evidence: JSON.parse(r.evidence),
      created_at: new Date(r.created_at).toISOString(),
    }));
  }
}

const EXPORT_COLUMNS = ['id', 'created_at', 'phone', 'status', 'purpose', 'channel', 'source', 'disclosure', 'ip', 'user_agent', 'form_url', 'message_id', 'evidence'] as const;

/**
 * One CSV cell. Quoted when needed; a cell a spreadsheet would run as a formula (=, @, or + and -
 * not followed by a number) gets a leading apostrophe, since the evidence holds text from strangers.
 */
export function csvCell(v: unknown): string {
  let s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  if (/^[=@\t\r]/.test(s) || /^[+-](?![\d .()-]*$)/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/**
 * The whole ledger of an account (or one number), oldest first, as CSV lines for an auditor.
 * Read in pages by id so an export of millions of records streams in constant memory.
 */
/**
 * A record's evidence as a reader may see it: a keyword's evidence quotes the message it came in,
 * which a reader who may not read message bodies (the viewer role) is not shown.
 */
export function evidenceFor(evidence: Record<string, unknown>, bodies: boolean): Record<string, unknown> {
  if (bodies || !('body' in evidence)) return evidence;
  const { body: _body, ...rest } = evidence;
  return { ...rest, body_redacted: true };
}

export async function* exportConsentCsv(db: Executor, accountId: string, mode: string, filter: { phone?: string; since?: number; until?: number; bodies?: boolean; maskPhones?: boolean } = {}): AsyncGenerator<string> {
  // The account's `mask_phone_numbers` (security/data-settings.ts): every number in the file, the
  // phone column and any inside the evidence, loses its last four digits.
  const mask = filter.maskPhones ? maskPhonesIn : (s: string) => s;
  yield `${EXPORT_COLUMNS.join(',')}\r\n`;
  let after = 0;
  for (;;) {
    let q = db.selectFrom('consent_records').selectAll().where('account_id', '=', accountId).where('mode', '=', mode).where('id', '>', after);
    if (filter.phone) q = q.where('phone', '=', filter.phone);
    if (filter.since !== undefined) q = q.where('created_at', '>=', filter.since);
    if (filter.until !== undefined) q = q.where('created_at', '<', filter.until);
    const rows = await q.orderBy('id').limit(1000).execute();
    if (rows.length === 0) return;
    let chunk = '';
    for (const r of rows) {
      const ev = JSON.parse(r.evidence) as Record<string, unknown>;
      const shown = filter.bodies === false ? JSON.stringify(evidenceFor(ev, false)) : r.evidence;
      const cells = [r.id, new Date(r.created_at).toISOString(), r.phone, r.status, r.purpose, r.channel, r.source, ev.disclosure, ev.ip, ev.user_agent, ev.form_url, ev.message_id, shown];
      chunk += `${cells.map((c) => (typeof c === 'string' ? csvCell(mask(c)) : csvCell(c))).join(',')}\r\n`;
    }
    yield chunk;
    after = Number(rows[rows.length - 1].id);
  }
}

export function parseConsentStatus(v: unknown): ConsentStatus {
  if (v === 'opted_in' || v === 'opted_out') return v;
  throw validation('status', 'status must be "opted_in" or "opted_out".');
}
