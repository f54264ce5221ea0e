// Request rate limits (issue 9): per credential (an API key, an OAuth client) and per account,
// counted per second with `rate-limiter-flexible`. Over a limit the answer is 429 RATE_LIMITED
// with Retry-After (whole seconds) and the limit that was hit in details.
//
// The counters are per process, in memory: with several API processes the effective limit is
// their number times the configured one (README, docs/security.md). A shared store (the
// library's PostgreSQL one) would cost a database round trip on every request, on the path that
// BENCHMARKS.md measures; per-process counters cost a map lookup. The backlog ceiling
// (messages/backpressure.ts) is the account-wide brake that does hold across processes.
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import type { Principal } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';

export interface RateLimitSettings {
  /** Requests per second per credential; 0 turns the limit off. */
  perCredential: number;
  /** Requests per second per account, all its credentials together; 0 turns it off. */
  perAccount: number;
}

export class RateLimits {
  private credential: RateLimiterMemory | null;
  private account: RateLimiterMemory | null;

  constructor(readonly settings: RateLimitSettings) {
    this.credential = settings.perCredential > 0 ? new RateLimiterMemory({ points: settings.perCredential, duration: 1, keyPrefix: 'cred' }) : null;
    this.account = settings.perAccount > 0 ? new RateLimiterMemory({ points: settings.perAccount, duration: 1, keyPrefix: 'acct' }) : null;
  }

  /** Counts one request of `principal`; throws RATE_LIMITED when a limit is exceeded. */
  async check(principal: Principal): Promise<void> {
    await this.consume(this.credential, `${principal.kind}:${principal.credentialId}`, 'credential', this.settings.perCredential);
    await this.consume(this.account, principal.accountId, 'account', this.settings.perAccount);
  }

  private async consume(limiter: RateLimiterMemory | null, key: string, scope: 'credential' | 'account', limit: number): Promise<void> {
    if (!limiter) return;
    try {
      await limiter.consume(key);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      const retryAfter = Math.max(1, Math.ceil(res.msBeforeNext / 1000));
      throw new AppError('RATE_LIMITED', `Too many requests for this ${scope}: at most ${limit} a second. Retry after ${retryAfter} s.`, { limit, per: 'second', scope, retry_after_s: retryAfter }, { 'retry-after': String(retryAfter) });
    }
  }
}

/** Checks every authenticated request (runs after installAuth's hook, which sets the principal). */
export function installRateLimits(app: FastifyInstance, limits: RateLimits): void {
  app.addHook('onRequest', async (req) => {
    if (req.principal) await limits.check(req.principal);
  });
}

export interface ConnectionLimits {
  maxConnections: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
}

/**
 * Node's server limits, applied where `start` listens: past maxConnections new sockets are closed
 * at once; a client that sends its headers slower than headersTimeout (slowloris) or a whole
 * request slower than requestTimeout is cut off; idle keep-alive sockets close after
 * keepAliveTimeout (above a proxy's own, so the proxy closes first).
 */
export function applyConnectionLimits(server: Server, l: ConnectionLimits): void {
  server.maxConnections = l.maxConnections;
  server.headersTimeout = l.headersTimeoutMs;
  server.requestTimeout = l.requestTimeoutMs;
  server.keepAliveTimeout = l.keepAliveTimeoutMs;
  server.maxHeadersCount = 100;
}
