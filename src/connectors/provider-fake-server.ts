// The HTTP side shared by the local fakes of the providers' APIs (test helpers): a node:http
// server on 127.0.0.1 that reads the whole request body and answers JSON. Each fake implements
// `handle` with the provider's documented shapes.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

export abstract class ProviderFakeServer {
  private server: Server | null = null;
  url = '';

  protected abstract handle(req: IncomingMessage, raw: string): Promise<FakeAnswer>;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      void (async () => {
        let raw = '';
        for await (const chunk of req) raw += chunk;
        return this.handle(req, raw);
      })().then(
        ({ status, body, headers }) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(body));
        },
        () => {
          res.writeHead(500);
          res.end();
        },
      );
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
