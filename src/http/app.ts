// Builds the HTTP app on a Platform. Never listens: tests use app.inject or listen themselves,
// and the CLI's `start` listens. Request validation uses two Ajv instances: bodies are checked
// strictly (a number where a string belongs is an error, not coerced), query strings and path
// parameters are coerced from text as usual.
import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import querystring from 'node:querystring';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import addFormatsImport from 'ajv-formats';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { audienceRoutes } from '../audiences/audience-routes.ts';
import { authRoutes } from '../auth/auth-routes.ts';
import { campaignRoutes } from '../campaigns/campaign-routes.ts';
import { connectorRoutes } from '../connectors/connector-routes.ts';
import { senderPoolRoutes } from '../senders/sender-pool-routes.ts';
import { providerWebhookRoutes } from '../connectors/provider-webhook-routes.ts';
import { consentRoutes } from '../consent/consent-routes.ts';
import { contactRoutes } from '../contacts/contact-routes.ts';
import { conversationRoutes } from '../inbox/conversation-routes.ts';
import { settingsRoutes } from '../consent/settings-routes.ts';
import { dataSettingsRoutes } from '../security/data-routes.ts';
import { installRateLimits, RateLimits } from '../security/rate-limits.ts';
import { simulatorRoutes } from '../connectors/simulator/simulator-routes.ts';
import { AppError } from '../errors.ts';
import { randomToken } from '../ids.ts';
import { messageRoutes } from '../messages/message-routes.ts';
import { mediaRoutes } from '../media/media-routes.ts';
import type { Platform } from '../platform.ts';
import { reviewRoutes } from '../review/review-routes.ts';
import { templateRoutes } from '../templates/template-routes.ts';
import { twilioRoutes } from '../twilio-compat/twilio-routes.ts';
import { webhookRoutes } from '../webhooks/webhook-routes.ts';
import { sessionRoutes } from '../users/session-routes.ts';
import { auditRoutes } from '../audit/audit-routes.ts';
import { installAuth } from './auth.ts';
import { frameworkErrors, installErrorHandling } from './errors.ts';
import { opsRoutes } from './ops-routes.ts';
import { dashboardRoutes } from './dashboard.ts';
import { analyticsRoutes } from '../analytics/analytics-routes.ts';
import { workflowRoutes } from '../workflows/workflow-routes.ts';

const addFormats = addFormatsImport as unknown as (ajv: Ajv) => Ajv;

const NUL_REFUSED = () => new AppError('VALIDATION_ERROR', 'The URL contains a NUL character (%00), which no id or parameter accepts.', { field: 'url' });

/** Keys with NUL in them dropped, at any depth (values were cleaned by the JSON reviver). */
function withoutNulKeys<T>(v: T): T {
  if (Array.isArray(v)) return v.map(withoutNulKeys) as T;
  if (typeof v !== 'object' || v === null) return v;
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k.includes('\0')) delete o[k];
    else if (typeof o[k] === 'object') o[k] = withoutNulKeys(o[k]);
  }
  return v;
}

/** No request of this API nests deeper; deeper input is refused before parsing (recursive code downstream). */
const MAX_JSON_DEPTH = 32;

/** Whether a JSON text nests objects and arrays deeper than `max` (strings skipped): one linear scan. */
function tooDeep(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \\ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

export interface AppOptions {
  logger?: boolean;
}

export async function buildApp(p: Platform, _opts: AppOptions = {}): Promise<FastifyInstance> {
  // Typed as the default instance so route modules take a plain FastifyInstance.
  const app = Fastify({
    loggerInstance: p.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: p.config.LOG_LEVEL !== 'debug' && p.config.LOG_LEVEL !== 'trace' }),
    bodyLimit: p.config.SWITCHBOARD_BODY_LIMIT_BYTES,
    genReqId: () => `req_${randomToken(12)}`,
    requestIdHeader: false,
    trustProxy: false,
    // How often Node checks open sockets against the headers and request timeouts that `start`
    // sets (security/rate-limits.ts applyConnectionLimits); its default, 30 s, lets a slow client
    // hold a socket that long past its timeout.
    http: { connectionsCheckingInterval: 2000 },
    frameworkErrors,
  });

  const bodyAjv = addFormats(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  const textAjv = addFormats(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : textAjv).compile(schema));

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    if (/%00|\0/i.test(req.url)) throw NUL_REFUSED();
    // Answers are data, never a page: a browser must not sniff a JSON body containing <script> as HTML.
    reply.header('x-content-type-options', 'nosniff');
  });
  // Keys in a JSON body that would pollute prototypes are refused outright.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = body as string;
    if (text.trim() === '') {
      done(Object.assign(new Error('empty body'), { statusCode: 400, code: 'FST_ERR_CTP_EMPTY_JSON_BODY' }), undefined);
      return;
    }
    if (tooDeep(text, MAX_JSON_DEPTH)) {
      done(new AppError('VALIDATION_ERROR', `The JSON body nests deeper than ${MAX_JSON_DEPTH} levels.`, { field: 'body', max_depth: MAX_JSON_DEPTH }), undefined);
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text, (k, v) => {
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') return undefined;
        // PostgreSQL text cannot hold NUL, and no field of this API means it: it is dropped, as
        // inbound text drops control characters.
        return typeof v === 'string' && v.includes('\0') ? v.replaceAll('\0', '') : v;
      });
    } catch {
      done(Object.assign(new SyntaxError('invalid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' }), undefined);
      return;
    }
    // A NUL can only be written \u0000 in JSON text: most bodies skip the walk.
    done(null, text.includes('\\u0000') && typeof parsed === 'object' && parsed !== null ? withoutNulKeys(parsed) : parsed);
  });
  await app.register(formbody, {
    bodyLimit: p.config.SWITCHBOARD_BODY_LIMIT_BYTES,
    parser: (body: string) => withoutNulKeys(querystring.parse(body.replace(/%00/gi, ''))),
  });
  // Parses the dashboard's session cookie for the auth hook (src/http/auth.ts); unsigned, as
  // the cookie holds a random token whose hash is looked up.
  await app.register(cookie);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Switchboard API',
        version: '0.1.0',
        description: 'The communication layer for business messaging. Every /v1 route takes Authorization: Bearer <API key or OAuth access token>, or the dashboard session cookie sb_session (POST /v1/session) with X-CSRF-Token on POST, PUT, PATCH and DELETE. Errors: {"error": {"code", "message", "retryable", "request_id", "details"}}.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: 'sb_session', description: 'The dashboard session (POST /v1/session); state-changing requests also send X-CSRF-Token.' },
          twilioBasic: { type: 'http', scheme: 'basic', description: 'The Twilio-compatible API (/2010-04-01): account SID and auth token, or API key SID and secret.' },
        },
      },
      security: [{ bearer: [] }, { session: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list', deepLinking: false }, staticCSP: true });

  installErrorHandling(app);
  installAuth(app, p.credentials, p.sessions);
  const limits = new RateLimits({ perCredential: p.config.SWITCHBOARD_RATE_LIMIT_PER_CREDENTIAL, perAccount: p.config.SWITCHBOARD_RATE_LIMIT_PER_ACCOUNT });
  installRateLimits(app, limits);

  opsRoutes(app, p);
  authRoutes(app, p);
  sessionRoutes(app, p);
  auditRoutes(app, p);
  messageRoutes(app, p);
  reviewRoutes(app, p);
  consentRoutes(app, p);
  settingsRoutes(app, p);
  dataSettingsRoutes(app, p);
  contactRoutes(app, p);
  conversationRoutes(app, p);
  simulatorRoutes(app, p);
  connectorRoutes(app, p);
  senderPoolRoutes(app, p);
  webhookRoutes(app, p);
  templateRoutes(app, p);
  audienceRoutes(app, p);
  campaignRoutes(app, p);
  workflowRoutes(app, p);
  await mediaRoutes(app, p);
  await providerWebhookRoutes(app, p);
  await twilioRoutes(app, p, limits);
  analyticsRoutes(app, p);
  await dashboardRoutes(app);
  return app;
}
