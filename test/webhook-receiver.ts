// A webhook receiver for tests: a real node:http server on 127.0.0.1 that verifies every request's
// signature with the `standardwebhooks` package, as a customer's receiver would, and records what
// arrived. It can be stopped (connections refused) and started again on the same port, and told to
// misbehave (answer 500, hang, close the socket, answer 410, stream a huge body).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  webhookId: string;
  type: string;
  messageId: string | null;
  body: { type: string; timestamp: string; data: Record<string, unknown> };
  headers: http.IncomingHttpHeaders;
  verified: boolean;
  at: number;
}

export type Behaviour = 'ok' | 'error500' | 'hang' | 'close' | 'gone' | 'huge';

export class Receiver {
  received: Received[] = [];
  /** Requests whose signature did not verify with any of `secrets`. */
  badSignatures = 0;
  secrets: string[] = [];
  behaviour: Behaviour = 'ok';
  hits = 0;
  private server: http.Server | null = null;
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(): Promise<this> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    return this;
  }

  /** Stops listening and drops open connections: the next request is refused. */
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
      s.closeAllConnections();
    });
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.hits++;
      const raw = Buffer.concat(chunks).toString('utf8');
      const behaviour = this.behaviour;
      if (behaviour === 'hang') return; // never answers; the client's timeout must cut it
      if (behaviour === 'close') {
        req.socket.destroy();
        return;
      }
      if (behaviour === 'error500') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('x'.repeat(5000));
        return;
      }
      if (behaviour === 'gone') {
        res.writeHead(410).end('gone');
        return;
      }
      if (behaviour === 'huge') {
        // 50 MB, written with backpressure; the client must stop reading after 1 KB.
        res.writeHead(500, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(64 * 1024, 97);
        let left = 50 * 1024 * 1024;
        const pump = () => {
          while (left > 0) {
            left -= chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => {});
        req.socket.on('error', () => {});
        pump();
        return;
      }
      let verified = false;
      for (const s of this.secrets) {
        try {
          new Webhook(s).verify(raw, req.headers as Record<string, string>);
          verified = true;
          break;
        } catch {
          // try the next secret
        }
      }
      if (!verified) this.badSignatures++;
      const body = JSON.parse(raw);
      this.received.push({
        webhookId: String(req.headers['webhook-id']),
        type: body.type,
        messageId: (body.data?.object === 'message' ? (body.data.id as string) : null) ?? null,
        body,
        headers: req.headers,
        verified,
        at: Date.now(),
      });
      res.writeHead(204).end();
    });
  }

  /** message id → event types in order of FIRST arrival (duplicates dropped), and the duplicate count. */
  perMessage(): { order: Map<string, string[]>; duplicates: number } {
    const seen = new Set<string>();
    const order = new Map<string, string[]>();
    let duplicates = 0;
    for (const r of this.received) {
      if (seen.has(r.webhookId)) {
        duplicates++;
        continue;
      }
      seen.add(r.webhookId);
      if (!r.messageId) continue;
      const list = order.get(r.messageId) ?? [];
      list.push(r.type);
      order.set(r.messageId, list);
    }
    return { order, duplicates };
  }
}
