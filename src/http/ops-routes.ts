// Operations: liveness, readiness, Prometheus metrics, and the OpenAPI document (the dashboard at / is src/http/dashboard.ts).
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Type } from 'typebox';
import type { Platform } from '../platform.ts';

export function opsRoutes(app: FastifyInstance, p: Platform): void {
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'The process is alive', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } }, async () => ({ status: 'ok' as const }));

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['operations'],
        summary: 'The database answers and a connector is up (each connector’s state is listed)',
        security: [],
        response: {
          200: Type.Object({ status: Type.String(), database: Type.String(), connectors: Type.Array(Type.Object({ id: Type.String(), status: Type.String(), circuit: Type.String() })) }),
          503: Type.Object({ status: Type.String(), database: Type.String(), connectors: Type.Array(Type.Object({ id: Type.String(), status: Type.String(), circuit: Type.String() })) }),
        },
      },
    },
    async (_req, reply) => {
      let database = 'ok';
      try {
        await sql`select 1`.execute(p.storage.db);
      } catch {
        database = 'unavailable';
      }
      const connectors = p.connectors.running().map((c) => ({ id: c.id, status: c.state().status, circuit: p.connectors.circuitState(c.id).state }));
      // One carrier being down must not take the whole API out of a load balancer: ready means
      // the database answers and at least one running connector (if any runs here) is up.
      const ready = database === 'ok' && (connectors.length === 0 || connectors.some((c) => c.status === 'up'));
      return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', database, connectors });
    },
  );

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics', security: [], hide: false } }, async (_req, reply) => {
    reply.header('content-type', p.metrics.registry.contentType);
    return p.metrics.registry.metrics();
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
