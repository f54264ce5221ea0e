// Test helpers: a real platform on a real SQLite file in a fresh temporary folder, with the
// HTTP app built on it (used through app.inject, or listening on 127.0.0.1 when a test needs
// a socket). No mocks: everything below the HTTP layer is the production code.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Resolver } from '../src/net/guarded-fetch.ts';
import type { Scope, Mode } from '../src/auth/scopes.ts';
import type { Clock } from '../src/clock.ts';
import { loadConfig, type Config } from '../src/config.ts';
import { buildApp } from '../src/http/app.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform, type Platform, type PlatformRole } from '../src/platform.ts';

export interface TestEnv {
  p: Platform;
  app: FastifyInstance;
  dir: string;
  /** The DATABASE_URL: a SQLite file path, or a PostgreSQL URL. */
  dbPath: string;
  accountId: string;
  /** An admin key of the default account, test mode. */
  testKey: string;
  liveKey: string;
  key(opts?: { scopes?: Scope[]; mode?: Mode; accountId?: string }): Promise<string>;
  req(method: InjectOptions['method'], url: string, opts?: { token?: string | null; body?: unknown; headers?: Record<string, string>; payload?: string }): Promise<LightMyRequestResponse>;
  /** Reopens the platform on the same database file (a restart), optionally with other configuration. */
  restart(opts?: { clock?: Clock; config?: Partial<Config> }): Promise<void>;
  close(): Promise<void>;
}

export const TEST_DEFAULTS: Partial<Config> = {
  LOG_LEVEL: 'silent',
  SWITCHBOARD_ENCRYPTION_KEY: '7f'.repeat(32),
  SWITCHBOARD_ALLOW_PRIVATE_URLS: true,
  SWITCHBOARD_RETRY_BASE_MS: 20,
  SWITCHBOARD_RETRY_MAX_MS: 200,
  SWITCHBOARD_SIMULATOR_RECEIPT_MS: 20,
  SWITCHBOARD_SIMULATOR_SLOW_MS: 300,
  SWITCHBOARD_POLL_MS: 20,
};

/** The dialect this run of the suite uses: `npm test` runs the suite once per dialect. */
export const DIALECT: 'sqlite' | 'postgres' = process.env.SWITCHBOARD_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';
const PG_ADMIN_URL = process.env.SWITCHBOARD_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A new, empty database for one test environment: a SQLite file in `dir`, or a PostgreSQL
 * database created for it (and dropped by `drop`).
 */
export async function freshDatabase(dir: string): Promise<{ url: string; drop: () => Promise<void> }> {
  if (DIALECT === 'sqlite') return { url: join(dir, 'switchboard.db'), drop: async () => {} };
  const name = `sb_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

export async function testEnv(opts: { clock?: Clock; config?: Partial<Config>; workers?: boolean; dir?: string; role?: PlatformRole; logger?: Logger; resolver?: Resolver } = {}): Promise<TestEnv> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'switchboard-test-'));
  const database = await freshDatabase(dir);
  const dbPath = database.url;
  let config = loadConfig({}, { ...TEST_DEFAULTS, DATABASE_URL: dbPath, ...opts.config });
  const open = async (clock?: Clock) => {
    const p = await createPlatform(config, { clock, logger: opts.logger ?? createLogger('silent'), processMetrics: false, role: opts.role, resolver: opts.resolver });
    const app = await buildApp(p);
    await app.ready();
    if (opts.workers) await p.startWorkers();
    return { p, app };
  };
  let { p, app } = await open(opts.clock);
  const { id: accountId } = await p.accounts.ensureDefaultAccount('Test account');
  const testKey = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'test' })).secret;
  const liveKey = (await p.credentials.createKey(accountId, { scopes: ['admin'], mode: 'live' })).secret;
  const env: TestEnv = {
    get p() {
      return p;
    },
    get app() {
      return app;
    },
    dir,
    dbPath,
    accountId,
    testKey,
    liveKey,
    async key({ scopes = ['admin'] as Scope[], mode = 'test' as Mode, accountId: acct = accountId } = {}) {
      return (await p.credentials.createKey(acct, { scopes, mode })).secret;
    },
    async req(method, url, { token = testKey, body, headers = {}, payload } = {}) {
      const h: Record<string, string> = { ...headers };
      if (token) h.authorization = `Bearer ${token}`;
      if (body !== undefined) h['content-type'] ??= 'application/json';
      return app.inject({ method, url, headers: h, payload: payload ?? (body === undefined ? undefined : JSON.stringify(body)) });
    },
    async restart({ clock, config: changed } = {}) {
      await app.close();
      await p.close();
      if (changed) config = loadConfig({}, { ...config, ...changed });
      ({ p, app } = await open(clock ?? opts.clock));
    },
    async close() {
      await app.close();
      await p.close();
      await database.drop();
      if (!opts.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/** Polls until `fn` returns a truthy value, or fails after `ms`. */
export async function eventually<T>(fn: () => Promise<T | undefined | null | false>, ms = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 15));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** A fictional number of the simulator's table: `+1 NXX 555 01YY` (area 202 unless given). */
export const sim = (yy: number, area = '202') => `+1${area}555${String(100 + yy).padStart(4, '0')}`;
