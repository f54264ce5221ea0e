// One HTTP POST to a receiver, defensively: a hard timeout over the whole exchange, redirects
// never followed (a 3xx is a failed attempt), at most the first 1 KB of the response body read
// and the socket destroyed after that (a 50 MB answer costs 1 KB of memory), and, unless private
// URLs are allowed, the resolved address checked at connect time (DNS that points a public name at
// 127.0.0.1 or 10.x is refused). It never throws: every failure is an outcome with an error text.
import type { lookup as dnsLookup } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { checkLiteralHost, guardedLookup, type Resolver } from '../net/guarded-fetch.ts';

export const RESPONSE_BODY_CAP = 1024;

export interface SendResult {
  /** The receiver's HTTP status, or null when no answer came (timeout, refused, reset). */
  status: number | null;
  /** First 1 KB of the response body, as text. */
  body: string | null;
  latencyMs: number;
  error: string | null;
}

export interface SenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  /** How names resolve (tests inject one); every answer is checked at connect time (net/guarded-fetch.ts). */
  resolver?: Resolver;
}

/** How one request differs from a Standard Webhooks POST (a delivery target kind's own encoding). */
export interface RequestOptions {
  method?: 'POST' | 'GET';
  contentType?: string;
  userAgent?: string;
  /** How much of the answer to read (default RESPONSE_BODY_CAP). */
  bodyCap?: number;
}

export class HttpSender {
  private httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });
  private httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 64, maxFreeSockets: 16 });

  private lookup;

  constructor(private opts: SenderOptions) {
    this.lookup = guardedLookup({ allowPrivate: opts.allowPrivate, resolver: opts.resolver });
  }

  post(url: string, headers: Record<string, string>, payload: string, opts: RequestOptions = {}): Promise<SendResult> {
    const cap = opts.bodyCap ?? RESPONSE_BODY_CAP;
    const method = opts.method ?? 'POST';
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      let status: number | null = null;
      let latencyMs = 0;
      const chunks: Buffer[] = [];
      let size = 0;
      const finish = (error: string | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const body = size > 0 ? Buffer.concat(chunks).subarray(0, cap).toString('utf8') : status === null ? null : '';
        resolve({ status, body, latencyMs: status === null ? elapsed() : latencyMs, error });
      };
      let target: URL;
      try {
        target = new URL(url);
        checkLiteralHost(target, this.opts);
      } catch (err) {
        finish(err instanceof TypeError ? 'invalid URL' : (err as Error).message);
        return;
      }
      const isHttps = target.protocol === 'https:';
      const req = (isHttps ? https : http).request(target, {
        method,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
        headers: {
          ...headers,
          ...(method === 'POST' ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
          'user-agent': opts.userAgent ?? 'Switchboard-Webhooks/1',
        },
        lookup: this.lookup as unknown as typeof dnsLookup,
      });
      // The whole exchange, headers and the capped body, must fit in the timeout. An answer whose
      // body never ends still counts by its status.
      const timer = setTimeout(() => {
        const msg = status === null ? `no answer within ${this.opts.timeoutMs} ms` : null;
        req.destroy();
        finish(msg);
      }, this.opts.timeoutMs);
      req.on('response', (res) => {
        status = res.statusCode ?? null;
        latencyMs = elapsed();
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          chunks.push(chunk);
          size += chunk.length;
          // Enough: never buffer a large answer. Destroying drops the connection instead of
          // draining megabytes we would throw away.
          if (size >= cap) {
            res.destroy();
            finish(null);
          }
        });
        res.on('end', () => finish(null));
        res.on('error', () => finish(null));
        res.on('close', () => finish(null));
      });
      req.on('error', (err: NodeJS.ErrnoException) => finish(err.code ? `${err.code}: ${err.message}` : err.message));
      req.end(method === 'POST' ? payload : undefined);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
