// The dashboard (dashboard/, built by scripts/build-dashboard.mjs into dashboard/dist) served at
// `/` by the API process itself: hashed assets cached for good, the page never cached, and every
// client path answered with the page (the SPA fallback) except the API's own prefixes, which keep
// their JSON 404. The page carries a strict Content-Security-Policy: only this origin's files, no
// inline script, no other host (fonts and scripts are bundled).
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DASHBOARD_DIST = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboard', 'dist');

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Paths the API owns: an unknown one there is the API's 404, never the dashboard's page. */
const API_PREFIXES = ['/v1', '/2010-04-01', '/media', '/docs', '/openapi.json', '/healthz', '/readyz', '/metrics', '/oauth', '/assets'];

const isApiPath = (path: string) => API_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));

function page(reply: FastifyReply) {
  reply.header('content-security-policy', DASHBOARD_CSP);
  reply.header('cache-control', 'no-cache');
  reply.header('referrer-policy', 'same-origin');
  reply.header('x-frame-options', 'DENY');
  return reply.sendFile('index.html', { cacheControl: false });
}

export async function dashboardRoutes(app: FastifyInstance, dist = DASHBOARD_DIST): Promise<void> {
  if (!existsSync(join(dist, 'index.html'))) {
    app.get('/', { schema: { hide: true } }, async (_req, reply) => {
      reply.header('content-type', 'text/html; charset=utf-8');
      reply.header('content-security-policy', DASHBOARD_CSP);
      return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Switchboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><h1>Switchboard</h1><p>The API is running; the dashboard is not built (run <code>npm run build:dashboard</code>, or <code>npm start</code>, which builds it).
Read the <a href="/docs">API reference</a> or fetch <a href="/openapi.json">/openapi.json</a>.</p></body></html>`;
    });
    return;
  }
  await app.register(fastifyStatic, { root: dist, serve: false });
  app.get('/*', { schema: { hide: true } }, async (req, reply) => {
    const path = decodeURIComponent(req.url.split('?')[0]);
    if (path.startsWith('/assets/')) {
      const file = normalize(join(dist, path));
      if (file.startsWith(dist + sep) && existsSync(file) && statSync(file).isFile()) {
        return reply.sendFile(path.slice(1), { immutable: true, maxAge: 365 * 24 * 3600 * 1000 });
      }
    }
    if (isApiPath(path)) return reply.callNotFound();
    return page(reply);
  });
}
