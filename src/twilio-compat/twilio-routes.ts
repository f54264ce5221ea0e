// Routes of the Twilio-compatible API, under /2010-04-01 exactly where api.twilio.com has them,
// plus the credentials route of our own API (/v1/twilio/credentials, for the dashboard).
//
// Everything under /2010-04-01 is one encapsulated Fastify plugin with its own authentication
// (HTTP Basic: account SID + auth token, or API key SID + secret; twilio-accounts.ts), its own
// error handler (Twilio's error body, with our CONTRACT §3 object beside it: twilio-errors.ts)
// and its own not-found answer (20404). Bodies are form-encoded, as Twilio's are (@fastify/formbody
// is registered on the root app); JSON is accepted too.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type TSchema } from 'typebox';
import { hasScope, type Scope } from '../auth/scopes.ts';
import { AppError } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { translateError } from '../http/errors.ts';
import { errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import type { RateLimits } from '../security/rate-limits.ts';
import { API_VERSION } from './message-resource.ts';
import { TwilioError, apiError, sendTwilioError, twilioInvalid, twilioNotFound } from './twilio-errors.ts';
import type { Form, TwilioPrincipal } from './twilio-message-api.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The scope a /2010-04-01 route needs of its Twilio credential (not `scope`: that is /v1's bearer auth). */
    twilioScope?: Scope;
  }
}

const Nullable = (t: TSchema) => Type.Union([t, Type.Null()]);

const TwilioErrorBody = Type.Object(
  {
    code: Type.Integer({ description: "Twilio's error code (https://www.twilio.com/docs/errors)." }),
    message: Type.String(),
    more_info: Type.String(),
    status: Type.Integer(),
    error: Type.Object({ code: Type.String(), message: Type.String(), retryable: Type.Boolean(), request_id: Type.String(), details: Type.Record(Type.String(), Type.Unknown()) }),
  },
  { description: "Twilio's error body; `error` is Switchboard's own (CONTRACT §3), which Twilio's libraries ignore." },
);
const twilioErrors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, TwilioErrorBody]));

const MessageResource = Type.Object(
  {
    account_sid: Type.String(),
    api_version: Type.String(),
    body: Nullable(Type.String()),
    body_redacted: Type.Optional(Type.Boolean()),
    date_created: Nullable(Type.String({ description: 'RFC 2822' })),
    date_sent: Nullable(Type.String()),
    date_updated: Nullable(Type.String()),
    direction: Type.String({ enum: ['inbound', 'outbound-api', 'outbound-reply'] }),
    error_code: Nullable(Type.Integer()),
    error_message: Nullable(Type.String()),
    from: Nullable(Type.String()),
    messaging_service_sid: Nullable(Type.String()),
    num_media: Type.String(),
    num_segments: Type.String(),
    price: Nullable(Type.String()),
    price_unit: Type.String(),
    sid: Type.String({ description: 'SM… (MM… with media): our msg_ id in hex.' }),
    status: Type.String({ enum: ['accepted', 'scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'canceled', 'received'] }),
    subresource_uris: Type.Record(Type.String(), Type.String()),
    to: Type.String(),
    uri: Type.String(),
  },
  { description: "Twilio's Message resource." },
);

const pageFields = {
  end: Type.Integer(),
  first_page_uri: Type.String(),
  next_page_uri: Nullable(Type.String()),
  page: Type.Integer(),
  page_size: Type.Integer(),
  previous_page_uri: Nullable(Type.String()),
  start: Type.Integer(),
  uri: Type.String(),
};

const NumberResource = Type.Object(
  {
    account_sid: Type.String(),
    address_requirements: Type.String(),
    api_version: Type.String(),
    beta: Type.Boolean(),
    capabilities: Type.Object({ fax: Type.Boolean(), mms: Type.Boolean(), sms: Type.Boolean(), voice: Type.Boolean() }),
    date_created: Nullable(Type.String()),
    date_updated: Nullable(Type.String()),
    friendly_name: Type.String(),
    origin: Type.String(),
    phone_number: Type.String(),
    sid: Type.String({ description: 'PN…: our sender_ id in hex.' }),
    sms_application_sid: Type.String(),
    sms_fallback_method: Type.String(),
    sms_fallback_url: Type.String(),
    sms_method: Type.String({ enum: ['GET', 'POST'] }),
    sms_url: Type.String(),
    status: Type.String(),
    status_callback: Type.String(),
    status_callback_method: Type.String(),
    uri: Type.String(),
    voice_method: Type.String(),
    voice_url: Type.String(),
  },
  { description: "Twilio's IncomingPhoneNumber resource, over one of the account's senders." },
);

const Param = Type.String({ maxLength: 64 });
const AccountParams = Type.Object({ AccountSid: Param });
const ItemParams = Type.Object({ AccountSid: Param, Sid: Param });
const FormValue = Type.Union([Type.String({ maxLength: 5000 }), Type.Array(Type.String({ maxLength: 5000 }), { maxItems: 20 })]);
const form = (fields: Record<string, string>, description: string) =>
  Type.Object(Object.fromEntries(Object.entries(fields).map(([k, d]) => [k, Type.Optional(Type.Union([Type.String({ maxLength: 5000, description: d }), Type.Array(Type.String({ maxLength: 5000 }), { maxItems: 20 })]))])), {
    additionalProperties: FormValue,
    description,
  });

const CreateMessageForm = form(
  {
    To: 'Recipient (required).',
    From: 'A sender of the account.',
    MessagingServiceSid: 'MG…: one of the account’s sender pools.',
    Body: 'The text (up to 1,600 characters).',
    MediaUrl: 'Repeat for up to 10 media URLs.',
    StatusCallback: 'URL receiving Twilio-style status callbacks.',
    ValidityPeriod: 'Seconds, 1 to 36000.',
    SendAt: 'ISO 8601, 15 minutes to 35 days ahead (with ScheduleType=fixed).',
    ScheduleType: 'fixed',
    ContentSid: 'HX…: one of the account’s templates.',
    ContentVariables: 'JSON object; "1", "2"… are the template’s declared variables in order.',
  },
  'Form-encoded, as Twilio takes it. Other Twilio parameters are accepted and ignored (docs/twilio-compatibility.md).',
);
const UpdateMessageForm = form({ Body: '"" redacts the text.', Status: 'canceled cancels a scheduled message.' }, 'Redact or cancel.');
const ListQuery = Type.Object({
  To: Type.Optional(Type.String({ maxLength: 64 })),
  From: Type.Optional(Type.String({ maxLength: 64 })),
  DateSent: Type.Optional(Type.String({ maxLength: 40 })),
  'DateSent<': Type.Optional(Type.String({ maxLength: 40 })),
  'DateSent>': Type.Optional(Type.String({ maxLength: 40 })),
  PageSize: Type.Optional(Type.String({ maxLength: 10 })),
  Page: Type.Optional(Type.String({ maxLength: 10 })),
  PageToken: Type.Optional(Type.String({ maxLength: 64 })),
});
const NumberForm = form({ PhoneNumber: 'The number to add (create only).', SmsUrl: 'URL Switchboard posts incoming messages to.', SmsMethod: 'POST (default) or GET.', FriendlyName: 'A label.' }, 'Form-encoded.');

const tags = ['twilio-compatible'];
const security = [{ twilioBasic: [] }];
const pathOf = (req: FastifyRequest) => req.url.split('?')[0];
const twilioPrincipal = (req: FastifyRequest) => principalOf(req) as TwilioPrincipal;

/** Any error on these paths, in Twilio's shape. */
function toTwilio(err: unknown): TwilioError {
  if (err instanceof TwilioError) return err;
  if (err instanceof AppError) return apiError(err);
  const fe = err as FastifyError;
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return twilioInvalid(20422, 'content-type', 'Send the parameters form-encoded (application/x-www-form-urlencoded).');
  const ours = translateError(fe);
  // The request's shape (schema validation): Twilio's generic invalid-parameter code, whatever
  // the field is called (our `body` field there is the whole request body, not the text).
  if (fe.validation && ours.code === 'VALIDATION_ERROR') return new TwilioError(20422, 400, ours.message, ours);
  return apiError(ours);
}

export async function twilioRoutes(app: FastifyInstance, p: Platform, limits?: RateLimits): Promise<void> {
  await app.register(
    async (tw) => {
      tw.setErrorHandler((err, req, reply) => {
        const e = toTwilio(err);
        if (e.status >= 500) req.log.error({ err }, 'unhandled error');
        return sendTwilioError(req, reply, e);
      });
      tw.setNotFoundHandler((req, reply) => sendTwilioError(req, reply, twilioNotFound(pathOf(req))));
      // Everything under the prefix is this plugin's, also when a wider catch-all exists outside
      // it (the dashboard's page fallback at `/*` would otherwise take unknown Twilio paths and
      // hand them to the root's not-found handler, which answers in our shape, not Twilio's).
      tw.route({ method: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'], url: '/*', schema: { hide: true }, handler: (req, reply) => sendTwilioError(req, reply, twilioNotFound(pathOf(req))) });
      tw.addHook('onRequest', async (req) => {
        const scope = req.routeOptions.config?.twilioScope;
        if (!scope) return;
        const sid = (req.params as { AccountSid?: string }).AccountSid ?? '';
        const principal = await p.twilio.accounts.authenticate(req.headers.authorization, sid, pathOf(req));
        if (!hasScope(principal.scopes, scope)) {
          throw new TwilioError(20403, 403, `This credential lacks the ${scope} scope.`, new AppError('FORBIDDEN', `This credential lacks the ${scope} scope.`, { required_scope: scope }));
        }
        req.principal = principal;
        // The same per-credential and per-account counters as /v1 (the app-wide hook ran before
        // this one, with no principal yet): over a limit, Twilio's 429 with code 20429 and Retry-After.
        await limits?.check(principal);
      });

      const messages = '/Accounts/:AccountSid/Messages';
      tw.post(
        `${messages}.json`,
        {
          config: { twilioScope: 'messages:send' },
          schema: {
            tags,
            security,
            summary: 'Send a message (Twilio Messages API)',
            description: 'Through MessageService: consent, suppression, routing and idempotency as POST /v1/messages. Header I-Twilio-Idempotency-Token (or Idempotency-Key): the same token and parameters within 24 h return the first message.',
            params: AccountParams,
            body: CreateMessageForm,
            response: { 201: MessageResource, ...twilioErrors(400, 401, 403, 404, 409, 413, 429) },
          },
        },
        async (req, reply) => {
          const token = req.headers['i-twilio-idempotency-token'] ?? req.headers['idempotency-key'];
          const resource = await p.twilio.messages.create(twilioPrincipal(req), (req.body ?? {}) as Form, typeof token === 'string' && token !== '' ? token.slice(0, 255) : null);
          return reply.status(201).send(resource);
        },
      );
      tw.get(
        `${messages}.json`,
        {
          config: { twilioScope: 'messages:read' },
          schema: {
            tags,
            security,
            summary: 'List messages, newest first, with Twilio paging',
            params: AccountParams,
            querystring: ListQuery,
            response: { 200: Type.Object({ ...pageFields, messages: Type.Array(MessageResource) }), ...twilioErrors(400, 401, 403, 404) },
          },
        },
        async (req) => p.twilio.messages.list(twilioPrincipal(req), req.query as Form),
      );
      tw.get(
        `${messages}/:Sid.json`,
        { config: { twilioScope: 'messages:read' }, schema: { tags, security, summary: 'Fetch a message', params: ItemParams, response: { 200: MessageResource, ...twilioErrors(401, 403, 404) } } },
        async (req) => p.twilio.messages.fetch(twilioPrincipal(req), (req.params as { Sid: string }).Sid, pathOf(req)),
      );
      tw.post(
        `${messages}/:Sid.json`,
        {
          config: { twilioScope: 'messages:send' },
          schema: { tags, security, summary: 'Redact (Body="") or cancel (Status=canceled) a message', params: ItemParams, body: UpdateMessageForm, response: { 200: MessageResource, ...twilioErrors(400, 401, 403, 404) } },
        },
        async (req) => p.twilio.messages.update(twilioPrincipal(req), (req.params as { Sid: string }).Sid, (req.body ?? {}) as Form, pathOf(req)),
      );
      tw.delete(
        `${messages}/:Sid.json`,
        {
          config: { twilioScope: 'messages:send' },
          schema: {
            tags,
            security,
            summary: 'Delete a message from the Twilio API (its text is erased; the delivery record stays in /v1)',
            params: ItemParams,
            response: { 204: Type.Null(), ...twilioErrors(400, 401, 403, 404) },
          },
        },
        async (req, reply) => {
          await p.twilio.messages.remove(twilioPrincipal(req), (req.params as { Sid: string }).Sid, pathOf(req));
          return reply.status(204).send();
        },
      );

      tw.get(
        '/Accounts/:AccountSid.json',
        {
          config: { twilioScope: 'messages:read' },
          schema: {
            tags,
            security,
            summary: 'The account (what a credential check fetches)',
            params: AccountParams,
            response: {
              200: Type.Object({ sid: Type.String(), friendly_name: Type.String(), status: Type.String(), type: Type.String(), date_created: Nullable(Type.String()), date_updated: Nullable(Type.String()), uri: Type.String(), subresource_uris: Type.Record(Type.String(), Type.String()) }),
              ...twilioErrors(401, 404),
            },
          },
        },
        async (req) => {
          const pr = twilioPrincipal(req);
          const account = await p.accounts.get(pr.accountId);
          const base = `/${API_VERSION}/Accounts/${pr.accountSid}`;
          const created = new Date(account.created_at).toUTCString().replace('GMT', '+0000');
          return {
            sid: pr.accountSid,
            friendly_name: account.name,
            status: 'active',
            type: 'Full',
            date_created: created,
            date_updated: created,
            uri: `${base}.json`,
            subresource_uris: { messages: `${base}/Messages.json`, incoming_phone_numbers: `${base}/IncomingPhoneNumbers.json` },
          };
        },
      );

      const numbers = '/Accounts/:AccountSid/IncomingPhoneNumbers';
      const numberScope = { twilioScope: 'connectors:manage' as const };
      tw.get(
        `${numbers}.json`,
        {
          config: numberScope,
          schema: {
            tags,
            security,
            summary: "The account's phone numbers (its senders)",
            params: AccountParams,
            querystring: Type.Object({ PhoneNumber: Type.Optional(Type.String({ maxLength: 64 })), PageSize: Type.Optional(Type.String({ maxLength: 10 })), Page: Type.Optional(Type.String({ maxLength: 10 })), PageToken: Type.Optional(Type.String({ maxLength: 64 })) }),
            response: { 200: Type.Object({ ...pageFields, incoming_phone_numbers: Type.Array(NumberResource) }), ...twilioErrors(400, 401, 403, 404) },
          },
        },
        async (req) => p.twilio.numbers.list(twilioPrincipal(req), req.query as Form),
      );
      tw.post(
        `${numbers}.json`,
        { config: numberScope, schema: { tags, security, summary: 'Add a phone number (a sender of the account)', params: AccountParams, body: NumberForm, response: { 201: NumberResource, ...twilioErrors(400, 401, 403, 404) } } },
        async (req, reply) => reply.status(201).send(await p.twilio.numbers.create(twilioPrincipal(req), (req.body ?? {}) as Form)),
      );
      tw.get(`${numbers}/:Sid.json`, { config: numberScope, schema: { tags, security, summary: 'A phone number', params: ItemParams, response: { 200: NumberResource, ...twilioErrors(401, 403, 404) } } }, async (req) =>
        p.twilio.numbers.fetch(twilioPrincipal(req), (req.params as { Sid: string }).Sid, pathOf(req)),
      );
      tw.post(
        `${numbers}/:Sid.json`,
        {
          config: numberScope,
          schema: { tags, security, summary: "Set a number's SmsUrl, SmsMethod, FriendlyName (for this credential's mode)", params: ItemParams, body: NumberForm, response: { 200: NumberResource, ...twilioErrors(400, 401, 403, 404) } },
        },
        async (req) => p.twilio.numbers.update(twilioPrincipal(req), (req.params as { Sid: string }).Sid, (req.body ?? {}) as Form, pathOf(req)),
      );
      tw.delete(
        `${numbers}/:Sid.json`,
        { config: numberScope, schema: { tags, security, summary: 'Remove a phone number (the sender)', params: ItemParams, response: { 204: Type.Null(), ...twilioErrors(401, 403, 404) } } },
        async (req, reply) => {
          await p.twilio.numbers.remove(twilioPrincipal(req), (req.params as { Sid: string }).Sid, pathOf(req));
          return reply.status(204).send();
        },
      );
    },
    { prefix: `/${API_VERSION}` },
  );

  const Credentials = Type.Object({
    object: Type.Literal('twilio_credentials'),
    account_sid: Type.String({ description: 'AC…: use as the Twilio account SID (HTTP Basic user).' }),
    auth_token: Type.String({ description: 'The auth token (HTTP Basic password, and the key of X-Twilio-Signature on callbacks).' }),
    account_id: Type.String(),
    mode: Type.String({ enum: ['test', 'live'] }),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
  });
  const credentials = async (req: FastifyRequest, _reply: FastifyReply, rotate: boolean) => {
    const pr = principalOf(req);
    return p.twilio.accounts.credentials(pr.accountId, pr.mode, { rotate, by: pr });
  };
  app.get(
    '/v1/twilio/credentials',
    {
      config: { scope: 'admin' },
      schema: { tags: ['twilio-compatible'], summary: "This account's Twilio-compatible account SID and auth token for the token's mode (made on first use)", response: { 200: Credentials, ...errorResponses(401, 403) } },
    },
    async (req, reply) => credentials(req, reply, false),
  );
  app.post(
    '/v1/twilio/credentials',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['twilio-compatible'],
        summary: 'The same; with {"rotate": true}, a new auth token (the account SID stays)',
        body: Type.Optional(Type.Object({ rotate: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
        response: { 200: Credentials, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => credentials(req, reply, (req.body as { rotate?: boolean } | undefined)?.rotate === true),
  );
}
