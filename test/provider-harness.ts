// The set-up the HTTP provider tests share: the platform listening on 127.0.0.1 (providers call
// back into /hooks), a connector of the provider's type through the API, a sender on it, and a
// route for +1415 numbers; plus reading a message until it reaches a status.
import assert from 'node:assert/strict';
import { eventually, type TestEnv } from './helpers.ts';

export const PROVIDER_SENDER = '+14155550100';

export async function connectProvider(
  env: TestEnv,
  opts: { name: string; type: string; capabilities: string[]; config: (base: string) => Record<string, unknown>; port?: number },
): Promise<{ base: string; connectorId: string; createdBody: string }> {
  await env.app.listen({ port: opts.port ?? 0, host: '127.0.0.1' });
  const addr = env.app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  const created = await env.req('POST', '/v1/connectors', { body: { name: opts.name, type: opts.type, config: opts.config(base) } });
  assert.equal(created.statusCode, 201, created.body);
  const connectorId = created.json().id as string;
  const sender = await env.req('POST', '/v1/senders', { body: { address: PROVIDER_SENDER, type: 'long_code', capabilities: opts.capabilities, connector_id: connectorId } });
  assert.equal(sender.statusCode, 201, sender.body);
  const route = await env.req('POST', '/v1/routes', { body: { priority: 1, filters: { prefix: '+1415' }, connector_id: connectorId } });
  assert.equal(route.statusCode, 201, route.body);
  return { base, connectorId, createdBody: created.body };
}

/** A port free on 127.0.0.1 now, for a test that must know its public URL before it listens. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Reading live-mode messages of the harness's account. */
export function messageReader(env: () => TestEnv) {
  const get = async (id: string) => (await env().req('GET', `/v1/messages/${id}`, { token: env().liveKey })).json();
  const settled = (id: string, statuses: string[]) =>
    eventually(
      async () => {
        const m = await get(id);
        return statuses.includes(m.status) && m;
      },
      10_000,
      `message ${id} in ${statuses.join('/')}`,
    );
  return { get, settled };
}
