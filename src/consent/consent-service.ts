// The consent ledger and the suppression list. Consent records are append-only: never updated,
// never deleted; the current state of a number is derived from its latest records. The
// `suppressions` table is that derivation for the question the send path asks on every message
// ("has this number opted out of everything?"), kept in step in the same transaction.
import type { Clock } from '../clock.ts';
import { validation } from '../errors.ts';
import { appendOutbox } from '../events/outbox.ts';
import type { Executor, Storage, Tx } from '../storage/database.ts';

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
}

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

  /** Latest record that speaks for this purpose and channel (a record for `all` speaks for every one). */
  async currentStatus(db: Executor, accountId: string, mode: string, phone: string, purpose: string, channel: string): Promise<ConsentStatus | null> {
    const row = await db
      .selectFrom('consent_records')
      .select('status')
      .where('account_id', '=', accountId)
      .where('mode', '=', mode)
      .where('phone', '=', phone)
      .where('purpose', 'in', [purpose, 'all'])
      .where('channel', 'in', [channel, 'all'])
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst();
    return (row?.status as ConsentStatus) ?? null;
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

export function parseConsentStatus(v: unknown): ConsentStatus {
  if (v === 'opted_in' || v === 'opted_out') return v;
  throw validation('status', 'status must be "opted_in" or "opted_out".');
}
