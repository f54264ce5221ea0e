// What the Twilio-compatibility tests share: the official `twilio` library pointed at a
// Switchboard listening on 127.0.0.1, and a receiver that checks every request the way an
// existing Twilio app does, with twilio.validateRequest.
//
// Pointing the library elsewhere is its documented extension point: a custom `httpClient`. Ours
// is the library's own RequestClient with the origin of each URI swapped for ours, so every
// request still goes through the library's serialisation, auth header and response handling.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';
import type { ManualClock } from '../src/clock.ts';
import type { TestEnv } from './helpers.ts';

type RequestOptions<T> = Parameters<InstanceType<typeof twilio.RequestClient>['request']>[0] & { data?: T };

export class LocalRequestClient extends twilio.RequestClient {
  constructor(private base: string) {
    super();
  }

  override request<T>(opts: RequestOptions<T>) {
    const u = new URL(opts.uri);
    return super.request<T>({ ...opts, uri: `${this.base}${u.pathname}${u.search}` });
  }
}

/** A client of the official library, talking to the Switchboard at `base`. */
export function twilioClient(base: string, username: string, password: string, accountSid?: string) {
  return twilio(username, password, { httpClient: new LocalRequestClient(base), ...(accountSid ? { accountSid } : {}) });
}

export interface TwilioRequest {
  method: string;
  path: string;
  url: string;
  params: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  valid: boolean;
}

/** A customer's webhook handler: validates X-Twilio-Signature with the library, records, answers. */
export class TwilioReceiver {
  received: TwilioRequest[] = [];
  authToken = '';
  /** The answer for a path (TwiML for incoming messages); 204 when none. */
  answers = new Map<string, { status: number; type: string; body: string }>();
  failNext = 0;
  private server: http.Server | null = null;
  port = 0;

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = `http://127.0.0.1:${this.port}${req.url}`;
        const path = (req.url ?? '').split('?')[0];
        const params = req.method === 'POST' ? Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) : {};
        const query = Object.fromEntries(new URL(url).searchParams);
        const valid = twilio.validateRequest(this.authToken, String(req.headers['x-twilio-signature'] ?? ''), url, params);
        this.received.push({ method: req.method ?? '', path, url, params: req.method === 'POST' ? params : query, headers: req.headers, valid });
        if (this.failNext > 0) {
          this.failNext--;
          res.writeHead(500).end('down');
          return;
        }
        const answer = this.answers.get(path);
        if (answer) res.writeHead(answer.status, { 'content-type': answer.type }).end(answer.body);
        else res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }
}

/** Runs the due work and moves the clock on, `steps` times. */
export async function settle(env: TestEnv, clock: ManualClock, steps = 8, stepMs = 1000): Promise<void> {
  for (let i = 0; i < steps; i++) {
    await env.p.runDue();
    clock.advance(stepMs);
  }
  await env.p.runDue();
  // On a loaded machine a callback can take longer than one round (a slow receiver, a retry
  // that became due late): keep going, bounded, until no event waits to be fanned out and no
  // delivery is pending, so what the test then asserts is the end state, not a snapshot.
  const db = env.p.storage.db.withoutPlugins();
  for (let extra = 0; extra < 60; extra++) {
    const unfanned = await db.selectFrom('outbox').select('id').where('fanned_out_at' as never, 'is', null).limit(1).executeTakeFirst();
    const pending = await db.selectFrom('webhook_deliveries' as never).select('id' as never).where('status' as never, '=', 'pending' as never).limit(1).executeTakeFirst();
    if (!unfanned && !pending) return;
    await new Promise((r) => setTimeout(r, 20));
    clock.advance(stepMs);
    await env.p.runDue();
  }
}
