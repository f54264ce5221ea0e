// The audit log: who did what, when, from which address, to which object. Append-only and
// tamper-evident.
//
// Words used here:
//   chain  — the entries of one account (or `_installation` for those of no account, such as a
//            failed sign-in with an unknown email), numbered by `seq` from 1 with no gaps.
//   hash   — SHA-256 over the canonical serialisation of an entry (`canonical()` below: a JSON
//            array of its fields in a fixed order, the previous entry's hash last). An entry
//            edited in the database no longer matches its hash; one removed leaves a gap in
//            `seq` and a `prev_hash` that points at nothing; two swapped break both.
//   head   — the chain's newest seq and hash in `audit_heads`. An append takes the head row's
//            lock (an UPDATE, which PostgreSQL holds to the end of the transaction and SQLite
//            takes with the write lock), so two writers can never fork a chain; the unique
//            (chain, seq) index refuses a fork even if that ever failed. The head also shows a
//            removed newest entry.
//
// `record()` runs in the caller's transaction so the entry commits with the change it records,
// or not at all. Call it last in that transaction: the head lock is then the last lock taken,
// so audited changes never wait on each other in a cycle. Nothing in the application updates or
// deletes an audit row.
import { createHash } from 'node:crypto';
import type { Principal } from '../auth/scopes.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Executor, Storage } from '../storage/database.ts';
import type { AuditLogTable } from '../storage/schema.ts';
import { beforeCommit, transaction } from '../storage/transactions.ts';
import type { Kysely, Transaction } from 'kysely';
import type { DB } from '../storage/schema.ts';

/** `twilio`: the Twilio-compatible auth token of an account and mode (its account SID, AC…). */
export type AuditActorType = 'user' | 'api_key' | 'oauth' | 'twilio' | 'system';

export interface AuditActor {
  type: AuditActorType;
  id: string;
}

export interface AuditEntry {
  /** null: an installation-wide entry (a sign-in attempt for an email no account knows). */
  accountId: string | null;
  actor: AuditActor;
  /** A dotted verb: `session.created`, `key.revoked`, `message.body_read`, … */
  action: string;
  target?: { type: string; id: string } | null;
  ip?: string | null;
  /** The mode of the change, for changes that belong to one (a key, a webhook); null for people. */
  mode?: string | null;
  /** What changed. Never a secret, a password or a message body. */
  details?: Record<string, unknown>;
  /** Milliseconds; the platform's clock. Defaults to the system clock. */
  at?: number;
}

/** Who is acting and from where: what a route hands a service so it can record the change. */
export interface AuditContext {
  actor: AuditActor;
  ip: string | null;
}

/** The actor a principal records as: a person by their user id, a credential by its id. */
export function actorOf(p: Principal): AuditActor {
  if (p.kind === 'session' && p.userId) return { type: 'user', id: p.userId };
  if (p.credentialId === 'cli' || p.credentialId.startsWith('campaign:')) return { type: 'system', id: p.credentialId };
  // An API key used through the Twilio API (SK…) stays that key; the auth token is its account SID.
  if (p.kind === 'twilio' && p.credentialId.startsWith('AC')) return { type: 'twilio', id: p.credentialId };
  return { type: p.kind === 'oauth' ? 'oauth' : 'api_key', id: p.credentialId };
}

export const CLI_ACTOR: AuditActor = { type: 'system', id: 'cli' };
export const SYSTEM_ACTOR: AuditActor = { type: 'system', id: 'system' };
/** Changes the SWITCHBOARD_CONFIG file makes at start. */
export const CONFIG_FILE: AuditContext = { actor: { type: 'system', id: 'config-file' }, ip: null };

export const INSTALLATION_CHAIN = '_installation';
const GENESIS = '0'.repeat(64);

/** JSON with object keys sorted, so that the same details always serialise to the same text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.keys(v as object).sort().map((k) => [k, (v as Record<string, unknown>)[k]]));
    }
    return v;
  });
}

type Hashed = Omit<AuditLogTable, 'hash'>;

/** The serialisation an entry's hash covers: every stored field, in this order, `prev_hash` last. */
function canonical(e: Hashed): string {
  return JSON.stringify(['switchboard-audit-v1', e.chain, Number(e.seq), e.id, Number(e.at), e.account_id, e.mode, e.actor_type, e.actor_id, e.action, e.target_type, e.target_id, e.ip, e.details, e.prev_hash]);
}

export const entryHash = (e: Hashed): string => createHash('sha256').update(canonical(e)).digest('hex');

const isTransaction = (db: Executor): db is Transaction<DB> => (db as Kysely<DB>).isTransaction === true;

/**
 * Appends one entry to its account's chain in `db`'s transaction, as the last thing that
 * transaction does (or in a transaction of its own when `db` is not one). The entry commits
 * with the change, or neither does.
 */
export async function record(db: Executor, entry: AuditEntry): Promise<void> {
  const at = entry.at ?? Date.now();
  const e = { ...entry, at };
  if (!isTransaction(db)) {
    await transaction(db, (tx) => append(tx, e));
    return;
  }
  if (!beforeCommit(db, () => append(db, e).then(() => undefined))) await append(db, e);
}

/** Records a change made by `by`: a principal (a route's caller) or an audit context; none means the CLI. */
export function recordBy(db: Executor, by: Principal | AuditContext | undefined, entry: Omit<AuditEntry, 'actor' | 'ip'> & { ip?: string | null }): Promise<void> {
  const ctx: AuditContext = !by ? { actor: CLI_ACTOR, ip: null } : 'actor' in by ? by : { actor: actorOf(by), ip: by.ip ?? null };
  return record(db, { ...entry, actor: ctx.actor, ip: entry.ip ?? ctx.ip, mode: entry.mode === undefined && by && 'mode' in by ? by.mode : entry.mode });
}

async function append(tx: Transaction<DB>, entry: AuditEntry): Promise<AuditLogTable> {
  const chain = entry.accountId ?? INSTALLATION_CHAIN;
  await tx.insertInto('audit_heads').values({ chain, seq: 0, hash: GENESIS }).onConflict((oc) => oc.column('chain').doNothing()).execute();
  // The UPDATE takes the head row's lock and returns the previous hash: a concurrent writer
  // waits here until this transaction ends, then sees this entry as its predecessor.
  const head = await tx
    .updateTable('audit_heads')
    .set((eb) => ({ seq: eb('seq', '+', 1) }))
    .where('chain', '=', chain)
    .returning(['seq', 'hash'])
    .executeTakeFirstOrThrow();
  const at = entry.at ?? Date.now();
  const row: Hashed = {
    id: newId('aud', at),
    chain,
    seq: Number(head.seq),
    account_id: entry.accountId,
    mode: entry.mode ?? null,
    at,
    actor_type: entry.actor.type,
    actor_id: entry.actor.id,
    action: entry.action,
    target_type: entry.target?.type ?? null,
    target_id: entry.target?.id ?? null,
    ip: entry.ip ?? null,
    details: canonicalJson(entry.details ?? {}),
    prev_hash: head.hash,
  };
  const full = { ...row, hash: entryHash(row) };
  await tx.insertInto('audit_log').values(full).execute();
  await tx.updateTable('audit_heads').set({ hash: full.hash }).where('chain', '=', chain).execute();
  return full;
}

export interface AuditView {
  id: string;
  object: 'audit_entry';
  seq: number;
  at: string;
  account_id: string | null;
  mode: string | null;
  actor: AuditActor;
  action: string;
  target: { type: string; id: string } | null;
  ip: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export function toAuditView(r: AuditLogTable): AuditView {
  return {
    id: r.id,
    object: 'audit_entry',
    seq: Number(r.seq),
    at: new Date(Number(r.at)).toISOString(),
    account_id: r.account_id,
    mode: r.mode,
    actor: { type: r.actor_type as AuditActorType, id: r.actor_id },
    action: r.action,
    target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
    ip: r.ip,
    details: JSON.parse(r.details),
    prev_hash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditQuery {
  action?: string;
  actor?: string;
  target?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

/** The first entry that breaks its chain, and how. */
export interface ChainFault {
  chain: string;
  seq: number;
  id: string | null;
  problem: 'hash_mismatch' | 'prev_hash_mismatch' | 'missing_entry' | 'head_mismatch';
  message: string;
}

export interface ChainReport {
  chain: string;
  entries: number;
  head: { seq: number; hash: string } | null;
  ok: boolean;
  fault: ChainFault | null;
}

export class AuditService {
  constructor(private storage: Storage) {}

  /** GET /v1/audit: one account's entries, newest first; entries of the other mode are not shown. */
  async list(accountId: string, mode: string, q: AuditQuery) {
    const limit = q.limit ?? 50;
    let query = this.storage.read
      .selectFrom('audit_log')
      .selectAll()
      .where('chain', '=', accountId)
      .where((eb) => eb.or([eb('mode', 'is', null), eb('mode', '=', mode)]));
    if (q.action !== undefined) {
      // `key.*` matches every key action.
      query = q.action.endsWith('.*') ? query.where('action', 'like', `${q.action.slice(0, -1).replace(/[%_\\]/g, '')}%`) : query.where('action', '=', q.action);
    }
    if (q.actor !== undefined) query = query.where('actor_id', '=', q.actor);
    if (q.target !== undefined) query = query.where('target_id', '=', q.target);
    for (const [field, op] of [['since', '>='], ['until', '<']] as const) {
      const v = q[field];
      if (v === undefined) continue;
      const t = Date.parse(v);
      if (Number.isNaN(t)) throw validation(field, `${field} must be an ISO 8601 date.`);
      query = query.where('at', op, t);
    }
    if (q.cursor !== undefined) {
      if (!/^\d{1,15}$/.test(q.cursor)) throw validation('cursor', 'cursor is not one this API returned.');
      query = query.where('seq', '<', Number(q.cursor));
    }
    const rows = await query.orderBy('seq', 'desc').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    return { data: page.map(toAuditView), next_cursor: rows.length > limit ? String(page[page.length - 1].seq) : null };
  }

  async get(accountId: string, mode: string, id: string): Promise<AuditView> {
    const row = await this.storage.read
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '=', id)
      .where('chain', '=', accountId)
      .where((eb) => eb.or([eb('mode', 'is', null), eb('mode', '=', mode)]))
      .executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No audit entry ${id} in this account.`, { id });
    return toAuditView(row);
  }

  /** The chains there are: every account that has entries, and the installation's. */
  async chains(): Promise<string[]> {
    const heads = await this.storage.db.selectFrom('audit_heads').select('chain').execute();
    const logged = await this.storage.db.selectFrom('audit_log').select('chain').distinct().execute();
    return [...new Set([...heads.map((h) => h.chain), ...logged.map((l) => l.chain)])].sort();
  }

  /**
   * Walks one chain from its first entry: each seq one more than the last, each prev_hash the
   * hash of the entry before, each hash recomputed from the row as it is now, and the head
   * matching the newest entry. Stops at the first fault.
   */
  async verify(chain: string): Promise<ChainReport> {
    const head = await this.storage.db.selectFrom('audit_heads').select(['seq', 'hash']).where('chain', '=', chain).executeTakeFirst();
    let expectedSeq = 1;
    let prevHash = GENESIS;
    let entries = 0;
    const fault = (seq: number, id: string | null, problem: ChainFault['problem'], message: string): ChainReport => ({
      chain,
      entries,
      head: head ? { seq: Number(head.seq), hash: head.hash } : null,
      ok: false,
      fault: { chain, seq, id, problem, message },
    });
    for (;;) {
      const page = await this.storage.db.selectFrom('audit_log').selectAll().where('chain', '=', chain).where('seq', '>=', expectedSeq).orderBy('seq').limit(1000).execute();
      if (page.length === 0) break;
      for (const r of page) {
        const seq = Number(r.seq);
        if (seq !== expectedSeq) return fault(expectedSeq, null, 'missing_entry', `entry ${expectedSeq} of chain ${chain} is missing (the next one is ${seq}, ${r.id})`);
        const { hash, ...rest } = r;
        if (r.prev_hash !== prevHash) return fault(seq, r.id, 'prev_hash_mismatch', `entry ${seq} (${r.id}) does not follow entry ${seq - 1}: its prev_hash is not that entry's hash (entries removed, reordered or edited)`);
        if (entryHash(rest) !== hash) return fault(seq, r.id, 'hash_mismatch', `entry ${seq} (${r.id}) was changed after it was written: its hash does not match its content`);
        prevHash = hash;
        expectedSeq = seq + 1;
        entries++;
      }
    }
    const headSeq = head ? Number(head.seq) : 0;
    if (headSeq !== entries || (head && head.hash !== prevHash && entries > 0)) {
      return fault(entries + 1, null, 'head_mismatch', `entry ${entries + 1} of chain ${chain} is missing: the chain ends at entry ${entries}, but its head says ${headSeq} (the newest entries were removed, or the head was changed)`);
    }
    return { chain, entries, head: head ? { seq: headSeq, hash: head.hash } : null, ok: true, fault: null };
  }

  async verifyAll(chains?: string[]): Promise<{ ok: boolean; chains: ChainReport[] }> {
    const reports: ChainReport[] = [];
    for (const c of chains ?? (await this.chains())) reports.push(await this.verify(c));
    return { ok: reports.every((r) => r.ok), chains: reports };
  }
}
