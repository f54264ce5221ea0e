// Transactions with after-commit hooks, and a batcher that runs many small transactions as one.
//
// Words used here:
//   after-commit hook — work that must happen only if the transaction commits (counting a
//                       status change in the metrics, waking a worker). Registered with
//                       `afterCommit(tx, fn)` inside a transaction opened by `transaction()`;
//                       dropped if it rolls back. In a transaction opened some other way the
//                       hook runs at once (the old behaviour).
//   deferred insert   — a row for an append-only table (message events, the outbox) written at
//                       the end of its transaction, together with the others of its table in
//                       multi-row INSERTs, instead of one INSERT each. Nothing reads those
//                       tables inside the transaction that writes them, and the order of rows
//                       (their ids) is kept.
//   before-commit work — async work that must be the last thing a transaction does (the audit
//                       log's append, which takes its chain's head lock: taken last, that lock
//                       never waits in a cycle with the change's own row locks). Registered
//                       with `beforeCommit(tx, fn)`; runs after the deferred inserts.
//   batch             — the units of work handed to a TxBatcher in one turn of the event loop,
//                       run one after another inside ONE transaction. On SQLite a commit is the
//                       expensive part of a small write (the WAL append), so fifty receipts cost
//                       one commit, not fifty. Each caller is answered only after the commit.
import type { Insertable, Kysely } from 'kysely';
import type { Executor, Tx } from './database.ts';
import type { DB } from './schema.ts';

type Deferrable = 'message_events' | 'outbox';

interface TxState {
  hooks: Array<() => void>;
  inserts: Map<Deferrable, Array<Insertable<DB[Deferrable]>>>;
  last?: Array<() => Promise<void>>;
}

const states = new WeakMap<Executor, TxState>();

/** Runs `fn` after `tx` commits (or at once, if `tx` was not opened by `transaction()`). */
export function afterCommit(tx: Tx, fn: () => void): void {
  const state = states.get(tx);
  if (state) state.hooks.push(fn);
  else runHook(fn);
}

/**
 * Runs `fn` at the end of `tx`, inside it, after everything else it does. Returns false (and
 * does nothing) when `tx` was not opened by `transaction()`: the caller then does the work now.
 */
export function beforeCommit(tx: Executor, fn: () => Promise<void>): boolean {
  const state = states.get(tx);
  if (!state) return false;
  (state.last ??= []).push(fn);
  return true;
}

/** Inserts `rows` into an append-only table at the end of `db`'s transaction (at once outside one). */
export async function insertDeferred<T extends Deferrable>(db: Executor, table: T, rows: Array<Insertable<DB[T]>>): Promise<void> {
  if (rows.length === 0) return;
  const state = states.get(db);
  const all = rows as unknown as Array<Insertable<DB[Deferrable]>>;
  if (!state) {
    await insertRows(db, table, all);
    return;
  }
  let list = state.inserts.get(table);
  if (!list) state.inserts.set(table, (list = []));
  for (const r of all) list.push(r);
}

async function insertRows(db: Executor, table: Deferrable, rows: Array<Insertable<DB[Deferrable]>>): Promise<void> {
  // Chunks keep each statement under SQLite's bound-parameter limit.
  for (let i = 0; i < rows.length; i += 500) await db.insertInto(table).values(rows.slice(i, i + 500) as never).execute();
}

function runHook(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    process.emitWarning(`after-commit hook failed: ${(err as Error).message}`);
  }
}

/** `db.transaction().execute(fn)`, then the hooks its work registered, in order. */
export async function transaction<T>(db: Kysely<DB>, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let state: TxState = { hooks: [], inserts: new Map() };
  const result = await db.transaction().execute(async (tx) => {
    state = { hooks: [], inserts: new Map() };
    states.set(tx, state);
    const out = await fn(tx);
    for (const [table, rows] of state.inserts) await insertRows(tx, table, rows);
    for (const f of state.last ?? []) await f();
    return out;
  });
  for (const f of state.hooks) runHook(f);
  return result;
}

interface Unit {
  fn: (tx: Tx) => Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit for independent units of work. Units handed over in the same turn of the event
 * loop run in one transaction, in order. If the transaction fails, each unit is run again alone
 * in its own, so one unit's error (a concurrent change, a constraint) reaches only its caller;
 * a unit must therefore be safe to run again after a rollback (it is: nothing it wrote stayed).
 * Units must use the `tx` they are given, never the database directly.
 */
export class TxBatcher {
  private pending: Unit[] = [];
  private flushing = false;

  constructor(
    private db: Kysely<DB>,
    private maxUnits = 500,
  ) {}

  run<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ fn, resolve: resolve as (v: unknown) => void, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length) {
        const units = this.pending.splice(0, this.maxUnits);
        let results: unknown[];
        try {
          results = await transaction(this.db, async (tx) => {
            const out: unknown[] = [];
            for (const u of units) out.push(await u.fn(tx));
            return out;
          });
        } catch (err) {
          if (units.length === 1) {
            units[0].reject(err);
            continue;
          }
          for (const u of units) {
            try {
              u.resolve(await transaction(this.db, u.fn));
            } catch (e) {
              u.reject(e);
            }
          }
          continue;
        }
        units.forEach((u, i) => u.resolve(results[i]));
      }
    } finally {
      this.flushing = false;
    }
  }
}
