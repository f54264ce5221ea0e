// Key rotation: re-seals every sealed column (sealed-columns.ts) under the primary key, in the
// background, while the platform keeps serving. `switchboard keys rotate-encryption` asks for one.
//
// Words used here:
//   rotation — a row of key_rotations. It walks SEALED_TABLES in order, each table by its primary
//              key in batches of `batch_size` rows. ONE transaction per batch re-seals the batch's
//              values and moves the rotation's position (table_index, cursor) past them: a crash
//              loses at most the batch in flight, which is simply done again.
//   reseal   — a value sealed with another key, or in the old v1 form, is opened and sealed again
//              with the primary; a plain value (written before encryption existed) is sealed. The
//              write is guarded on the old value (compare and swap), so a value changed meanwhile
//              (a redaction, a new write — already sealed with the primary) is left alone.
//   unreadable — a value sealed with a key this process does not have, or damaged: counted and
//              left as it is. A rotation that ends with unreadable values says so; the old key must
//              not be dropped until a rotation with all keys present ends with none.
//   lease    — the worker running a rotation holds (lease_owner, lease_expires_at), renewed by
//              every batch. Another process takes over only after it expires. Only a process whose
//              primary IS the target key runs the rotation.
//
// While a rotation runs, every process must hold both keys: the new one as
// SWITCHBOARD_ENCRYPTION_KEY, the old ones in SWITCHBOARD_ENCRYPTION_KEYS_OLD (docs/security.md).
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../clock.ts';
import { CLI_ACTOR, record, type AuditContext } from '../audit/audit-service.ts';
import { newId } from '../ids.ts';
import { transaction } from '../storage/transactions.ts';
import type { Storage } from '../storage/database.ts';
import type { KeyRotationsTable } from '../storage/schema.ts';
import { BackgroundLoop } from './background-loop.ts';
import type { Keyring } from './crypto.ts';
import { SEALED_TABLES, type SealedTable } from './sealed-columns.ts';

/** A rotation asked for by an upgrade (migration 013): its target is whatever primary runs it. */
export const ANY_KEY = '*';
const DEFAULT_BATCH = 500;
const MAX_BATCH = 10_000;

export interface RotationView {
  id: string;
  object: 'key_rotation';
  status: string;
  target_key_id: string;
  /** The table being walked, or null once done. */
  table: string | null;
  tables_done: number;
  tables_total: number;
  total: number;
  scanned: number;
  resealed: number;
  unreadable: number;
  /** scanned / total, as a whole percentage (rows written during the rotation can take it past 100 before the end). */
  percent: number;
  batch_size: number;
  error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface CensusRow {
  table: string;
  column: string;
  /** key id → values sealed with it; `plain` for values not sealed at all. */
  counts: Record<string, number>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export class KeyRotation {
  private loop: BackgroundLoop;

  constructor(
    private storage: Storage,
    private clock: Clock,
    private keyring: Keyring,
    private log: Logger,
    private opts: { workerId: string; leaseMs?: number; pollMs?: number; pauseMs?: number; tables?: SealedTable[] },
  ) {
    this.loop = new BackgroundLoop('key rotation', () => this.runOnce(), log, opts.pollMs ?? 5000, opts.pauseMs ?? 10);
  }

  private get tables(): SealedTable[] {
    return this.opts.tables ?? SEALED_TABLES;
  }

  /** Below the sealing plugin: the rotation reads and writes the stored form itself. */
  private get raw(): Kysely<any> {
    return this.storage.db.withoutPlugins() as unknown as Kysely<any>;
  }

  start(): void {
    this.loop.start();
  }

  /** Stops the loop and hands the lease back, so another process can carry on at once. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await this.storage.db
      .updateTable('key_rotations')
      .set({ lease_owner: null, lease_expires_at: null })
      .where('lease_owner', '=', this.opts.workerId)
      .where('status', '=', 'running')
      .execute()
      .catch(() => {});
  }

  wake(): void {
    this.loop.wake();
  }

  view(r: KeyRotationsTable): RotationView {
    const total = Number(r.total);
    const scanned = Number(r.scanned);
    return {
      id: r.id,
      object: 'key_rotation',
      status: r.status,
      target_key_id: r.target_key_id,
      table: this.tables[r.table_index]?.table ?? null,
      tables_done: Math.min(r.table_index, this.tables.length),
      tables_total: this.tables.length,
      total,
      scanned,
      resealed: Number(r.resealed),
      unreadable: Number(r.unreadable),
      percent: r.status === 'completed' ? 100 : total > 0 ? Math.min(99, Math.floor((scanned / total) * 100)) : 0,
      batch_size: r.batch_size,
      error: r.error,
      created_at: iso(r.created_at)!,
      updated_at: iso(r.updated_at)!,
      finished_at: iso(r.finished_at),
    };
  }

  /**
   * Asks for a rotation to the primary key; the one already running for it, if any. A new one is
   * audited (`key_rotation.requested`, in the installation's chain: keys are not an account's);
   * `by` is who asked, the CLI when absent.
   */
  async request(opts: { batchSize?: number; by?: AuditContext } = {}): Promise<{ rotation: RotationView; created: boolean }> {
    const batch = opts.batchSize ?? DEFAULT_BATCH;
    if (!Number.isInteger(batch) || batch < 1 || batch > MAX_BATCH) throw new Error(`the batch size must be a whole number from 1 to ${MAX_BATCH}`);
    const db = this.storage.db;
    const running = await db.selectFrom('key_rotations').selectAll().where('status', '=', 'running').orderBy('created_at').execute();
    const same = running.find((r) => r.target_key_id === this.keyring.keyId || r.target_key_id === ANY_KEY);
    if (same) return { rotation: this.view(same), created: false };
    const now = this.clock.now();
    const row: KeyRotationsTable = {
      id: newId('rot', now),
      status: 'running',
      target_key_id: this.keyring.keyId,
      batch_size: batch,
      table_index: 0,
      cursor: null,
      total: await this.countRows(),
      scanned: 0,
      resealed: 0,
      unreadable: 0,
      lease_owner: null,
      lease_expires_at: null,
      error: null,
      created_at: now,
      updated_at: now,
      finished_at: null,
    };
    await transaction(db, async (tx) => {
      // A rotation to another key that is still running stops here: only one target at a time.
      for (const r of running) {
        await tx.updateTable('key_rotations').set({ status: 'canceled', error: `superseded by a rotation to key ${this.keyring.keyId}`, finished_at: now, updated_at: now }).where('id', '=', r.id).execute();
      }
      await tx.insertInto('key_rotations').values(row).execute();
      await record(tx, {
        accountId: null,
        actor: (opts.by ?? { actor: CLI_ACTOR }).actor,
        ip: opts.by?.ip ?? null,
        action: 'key_rotation.requested',
        target: { type: 'key_rotation', id: row.id },
        details: { target_key_id: row.target_key_id, batch_size: batch, superseded: running.map((r) => r.id) },
        at: now,
      });
    });
    this.wake();
    return { rotation: this.view(row), created: true };
  }

  async latest(): Promise<RotationView | null> {
    const r = await this.storage.db.selectFrom('key_rotations').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirst();
    return r ? this.view(r) : null;
  }

  async get(id: string): Promise<RotationView | null> {
    const r = await this.storage.db.selectFrom('key_rotations').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? this.view(r) : null;
  }

  private async countRows(): Promise<number> {
    let total = 0;
    for (const t of this.tables) {
      try {
        const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(t.table)}`.execute(this.raw);
        total += Number(r.rows[0]?.n ?? 0);
      } catch {
        // A table of a capability this database does not have yet.
      }
    }
    return total;
  }

  /**
   * One batch of the running rotation, if this process may run it: re-seals up to batch_size
   * rows of the current table and commits the new position with them. Returns rows scanned.
   */
  async runOnce(): Promise<number> {
    const now = this.clock.now();
    const leaseMs = this.opts.leaseMs ?? 60_000;
    const me = this.opts.workerId;
    const db = this.storage.db;
    const candidate = await db
      .selectFrom('key_rotations')
      .selectAll()
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('target_key_id', '=', this.keyring.keyId), eb('target_key_id', '=', ANY_KEY)]))
      .orderBy('created_at')
      .limit(1)
      .executeTakeFirst();
    if (!candidate) return 0;
    const took = await db
      .updateTable('key_rotations')
      .set({ lease_owner: me, lease_expires_at: now + leaseMs, target_key_id: this.keyring.keyId, updated_at: now })
      .where('id', '=', candidate.id)
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', me), eb('lease_expires_at', '<=', now)]))
      .executeTakeFirst();
    if (Number(took.numUpdatedRows) !== 1) return 0;
    if (candidate.target_key_id === ANY_KEY && candidate.total === 0) {
      await db.updateTable('key_rotations').set({ total: await this.countRows() }).where('id', '=', candidate.id).execute();
    }
    try {
      return await this.batch(candidate.id, now + leaseMs);
    } catch (err) {
      // Left running: the next pass (or another worker, once the lease expires) tries again.
      this.log.warn({ err, rotation: candidate.id }, 'key rotation batch failed');
      throw err;
    }
  }

  private async batch(id: string, leaseUntil: number): Promise<number> {
    const me = this.opts.workerId;
    const target = this.keyring.keyId;
    return this.raw.transaction().execute(async (tx) => {
      const r = (await tx.selectFrom('key_rotations').selectAll().where('id', '=', id).where('lease_owner', '=', me).executeTakeFirst()) as KeyRotationsTable | undefined;
      if (!r || r.status !== 'running') return 0;
      const now = this.clock.now();
      const t = this.tables[r.table_index];
      if (!t) {
        await tx.updateTable('key_rotations').set({ status: 'completed', finished_at: now, updated_at: now, lease_owner: null, lease_expires_at: null }).where('id', '=', id).execute();
        this.log.info({ rotation: id, key_id: target, resealed: Number(r.resealed), unreadable: Number(r.unreadable) }, 'key rotation completed');
        return 1;
      }
      const cursor = r.cursor ? (JSON.parse(r.cursor) as unknown[]) : null;
      let q = tx.selectFrom(t.table).select([...t.keys, ...t.columns]);
      if (cursor) q = q.where(sql<boolean>`(${sql.join(t.keys.map((k) => sql.ref(k)))}) > (${sql.join(cursor)})`);
      for (const k of t.keys) q = q.orderBy(k);
      const limit = Math.min(r.batch_size, t.maxBatch ?? r.batch_size);
      const rows: Array<Record<string, unknown>> = await q.limit(limit).execute();
      let resealed = 0;
      let unreadable = 0;
      for (const row of rows) {
        for (const col of t.columns) {
          const v = row[col];
          const context = `${t.table}.${col}`;
          if (v instanceof Uint8Array) {
            if (v.length === 0) continue;
            const got = this.keyring.tryOpenBytes(v, [context]);
            if (!got.ok && got.reason !== 'plain') {
              unreadable++;
              continue;
            }
            if (got.ok && got.keyId === target) continue;
            let u = tx.updateTable(t.table).set({ [col]: this.keyring.sealBytes(got.ok ? got.bytes : v, context) }).where(col, '=', v);
            for (const k of t.keys) u = u.where(k, '=', row[k]);
            resealed += Number((await u.executeTakeFirst()).numUpdatedRows);
            continue;
          }
          if (typeof v !== 'string' || v === '') continue;
          let next: string;
          const opened = this.keyring.tryOpen(v, [context]);
          if (opened.ok) {
            if (opened.keyId === target && opened.version === 2) continue;
            next = this.keyring.seal(opened.text, context);
          } else if (opened.reason === 'plain') {
            next = this.keyring.seal(v, context);
          } else {
            unreadable++;
            continue;
          }
          let u = tx.updateTable(t.table).set({ [col]: next }).where(col, '=', v);
          for (const k of t.keys) u = u.where(k, '=', row[k]);
          const res = await u.executeTakeFirst();
          resealed += Number(res.numUpdatedRows);
        }
      }
      const last = rows[rows.length - 1];
      const done = rows.length < limit;
      await tx
        .updateTable('key_rotations')
        .set({
          table_index: done ? r.table_index + 1 : r.table_index,
          cursor: done ? null : JSON.stringify(t.keys.map((k) => last[k])),
          scanned: Number(r.scanned) + rows.length,
          resealed: Number(r.resealed) + resealed,
          unreadable: Number(r.unreadable) + unreadable,
          lease_expires_at: leaseUntil,
          updated_at: now,
        })
        .where('id', '=', id)
        .where('lease_owner', '=', me)
        .execute();
      return Math.max(rows.length, 1);
    });
  }

  /**
   * Runs (or follows, when another process holds it) a rotation until it ends, calling
   * `progress` after each step. The CLI's foreground mode.
   */
  async follow(id: string, progress: (v: RotationView) => void, idleMs = 500): Promise<RotationView> {
    for (;;) {
      const did = await this.runOnce();
      const v = await this.get(id);
      if (!v) throw new Error(`no rotation ${id}`);
      progress(v);
      if (v.status !== 'running') return v;
      if (did === 0) await new Promise((r) => setTimeout(r, idleMs));
    }
  }

  /** How many stored values each key sealed, per sealed column: a full scan, on request only. */
  async census(): Promise<CensusRow[]> {
    const out: CensusRow[] = [];
    for (const t of this.tables) {
      for (const c of t.columns) {
        const col = sql.ref(c);
        // A blob's header is read as text: its first 12 bytes.
        const head = !t.binary ? col : this.storage.dialect.name === 'postgres' ? sql`encode(substring(${col} from 1 for 12), 'escape')` : sql`cast(substr(${col}, 1, 12) as text)`;
        const present = t.binary ? sql`length(${col}) > 0` : sql`${col} <> ''`;
        try {
          const r = await sql<{ k: string; n: number | string }>`
            select case when ${head} like 'v_:________:%' then substr(${head}, 1, 11) else 'plain' end as k, count(*) as n
            from ${sql.table(t.table)} where ${col} is not null and ${present} group by 1`.execute(this.raw);
          const counts: Record<string, number> = {};
          for (const row of r.rows) {
            // `v2:<key id>`, `v1:<key id>` (the old context-free form) or `plain`.
            const name = row.k === 'plain' ? 'plain' : row.k.startsWith('v1:') ? `${row.k.slice(3)} (v1)` : row.k.slice(3);
            counts[name] = (counts[name] ?? 0) + Number(row.n);
          }
          out.push({ table: t.table, column: c, counts });
        } catch (err) {
          if (!/no such table|does not exist/.test((err as Error).message)) throw err;
        }
      }
    }
    return out;
  }
}
