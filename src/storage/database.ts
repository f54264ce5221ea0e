// Opens the database named by DATABASE_URL: a file path or `sqlite:` URL (embedded SQLite,
// the default) or `postgres://…`. Everything above this module speaks Kysely; the differences
// between backends are declared once, as flags on `Storage.dialect`, not scattered `if`s.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Sqlite from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type KyselyPlugin, type Transaction } from 'kysely';
import pg from 'pg';
import type { DB } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface DialectFlags {
  name: DialectName;
  /** `SELECT … FOR UPDATE SKIP LOCKED`: several workers claim from one queue without blocking. */
  supportsSkipLocked: boolean;
}

export interface Storage {
  db: Kysely<DB>;
  /**
   * For reads outside a transaction on the request path (checks before accepting, sign-in).
   * On SQLite it is a second connection: Kysely's SQLite driver serialises everything on one
   * connection behind a mutex, so a read on `db` waits for any open write transaction, and
   * concurrent requests could never meet in one group commit. In WAL mode the reader sees every
   * committed write at once and never blocks the writer. On PostgreSQL it is `db` (a pool).
   */
  read: Kysely<DB>;
  dialect: DialectFlags;
  /** For SQLite: the file path; for PostgreSQL: the URL without its password. */
  location: string;
  close(): Promise<void>;
}

export type Tx = Transaction<DB>;
export type Executor = Kysely<DB> | Tx;

export function parseDatabaseUrl(url: string): { dialect: DialectName; target: string } {
  if (/^postgres(ql)?:\/\//.test(url)) return { dialect: 'postgres', target: url };
  if (url.startsWith('sqlite:')) {
    let path = url.slice('sqlite:'.length);
    if (path.startsWith('//')) path = path.slice(2);
    return { dialect: 'sqlite', target: path || ':memory:' };
  }
  if (/^[a-z]+:\/\//i.test(url)) throw new Error(`DATABASE_URL: unsupported scheme in ${url.split('://')[0]}://`);
  return { dialect: 'sqlite', target: url };
}

export interface OpenOptions {
  sqliteSynchronous?: 'NORMAL' | 'FULL';
  /** On every handle (security/sealing-plugin.ts seals and opens the sealed columns). */
  plugins?: KyselyPlugin[];
  /** A pooled PostgreSQL connection that dies while idle (a server restart, a dropped database). */
  onIdleConnectionError?: (err: Error) => void;
}

/**
 * Kysely's SQLite driver prepares every statement anew; preparing costs more than running a
 * small insert. Statements are cached by their SQL text (bounded), which is safe because Kysely
 * runs them with all()/run(), never leaving one mid-iteration.
 */
function withStatementCache(handle: Sqlite.Database, max = 500): Sqlite.Database {
  const cache = new Map<string, Sqlite.Statement>();
  const prepare = handle.prepare.bind(handle);
  return new Proxy(handle, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (source: string) => {
          let stmt = cache.get(source);
          if (!stmt) {
            stmt = prepare(source);
            if (cache.size >= max) cache.delete(cache.keys().next().value!);
            cache.set(source, stmt);
          }
          return stmt;
        };
      }
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export async function openStorage(url: string, options: OpenOptions = {}): Promise<Storage> {
  const { dialect, target } = parseDatabaseUrl(url);
  if (dialect === 'sqlite') {
    const path = target === ':memory:' ? target : resolve(target);
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const handle = new Sqlite(path);
    // WAL lets the CLI and the server share the file; NORMAL keeps commits durable against a
    // process crash (the WAL is on disk) and loses at most the last commits on a power cut.
    // SWITCHBOARD_SQLITE_SYNCHRONOUS=FULL trades speed for power-cut durability.
    handle.pragma('journal_mode = WAL');
    handle.pragma(`synchronous = ${options.sqliteSynchronous ?? 'NORMAL'}`);
    handle.pragma('busy_timeout = 5000');
    handle.pragma('foreign_keys = ON');
    // Deleted and overwritten content is zeroed, so a redacted body or a value re-sealed by a key
    // rotation does not linger in free pages of the file.
    handle.pragma('secure_delete = ON');
    const plugins = options.plugins ?? [];
    const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(handle) }), plugins });
    let read = db;
    if (path !== ':memory:') {
      const reader = new Sqlite(path);
      reader.pragma('busy_timeout = 5000');
      reader.pragma('query_only = ON');
      read = new Kysely<DB>({ dialect: new SqliteDialect({ database: withStatementCache(reader) }), plugins });
    }
    return {
      db,
      read,
      dialect: { name: 'sqlite', supportsSkipLocked: false },
      location: path,
      close: async () => {
        if (read !== db) await read.destroy();
        await db.destroy();
      },
    };
  }
  // bigint columns hold millisecond timestamps and counters, all well inside 2^53.
  pg.types.setTypeParser(20, (v) => Number(v));
  const pool = new pg.Pool({ connectionString: target, max: 10 });
  // pg emits 'error' on the POOL when an idle connection is killed by the server (a restart,
  // pg_terminate_backend, a failover); with no listener Node turns that into an uncaught
  // exception and the whole process dies. The pool already discards the dead connection and
  // opens a new one on the next query, so noting it is all there is to do.
  pool.on('error', (err) => options.onIdleConnectionError?.(err));
  // A connection that is checked out (inside a transaction, between two queries) has no pool
  // listener at all, so the same kill would crash the process from there. The query that
  // follows fails with a clear error, and the pool drops the dead client when it is released.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }), plugins: options.plugins ?? [] });
  await sql`select 1`.execute(db);
  return {
    db,
    read: db,
    dialect: { name: 'postgres', supportsSkipLocked: true },
    location: target.replace(/:[^:@/]*@/, ':***@'),
    close: () => db.destroy(),
  };
}
