// Shared schemas: they drive request validation and the OpenAPI document at /openapi.json.
import { Type } from 'typebox';

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      retryable: Type.Boolean(),
      request_id: Type.String(),
      details: Type.Record(Type.String(), Type.Unknown()),
    }),
  },
  { description: 'Every error answer, whatever the route (CONTRACT §3).' },
);

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const MessageSchema = Type.Object(
  {
    id: Type.String({ examples: ['msg_01jd8x9q2r5b7c3v4w6y8z0a1b'] }),
    object: Type.Literal('message'),
    account_id: Type.String(),
    mode: Type.String({ enum: ['test', 'live'] }),
    direction: Type.String({ enum: ['outbound', 'inbound'] }),
    channel: Type.String({ enum: ['sms', 'mms', 'voice', 'rvm'] }),
    to: Type.String(),
    from: Nullable(Type.String()),
    body: Nullable(Type.String()),
    media_urls: Type.Array(Type.String()),
    status: Type.String({ enum: ['scheduled', 'queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'expired', 'canceled', 'received'] }),
    segments: Type.Integer(),
    encoding: Type.String({ enum: ['GSM-7', 'UCS-2'] }),
    purpose: Type.String(),
    provider_message_id: Nullable(Type.String()),
    connector_id: Nullable(Type.String()),
    error: Type.Union([
      Type.Object({
        class: Type.String({ enum: ['AUTH_FAILED', 'INVALID_NUMBER', 'RATE_LIMITED', 'OPTED_OUT', 'FILTERED', 'UNREACHABLE', 'UNKNOWN_ERROR'] }),
        code: Type.String(),
        message: Type.String(),
        provider_code: Nullable(Type.String()),
      }),
      Type.Null(),
    ]),
    voice: Type.Union(
      [
        Type.Object({
          outcome: Type.Union([Type.String({ enum: ['answered', 'machine', 'no_answer', 'busy', 'failed'] }), Type.Null()]),
          duration_s: Type.Union([Type.Integer(), Type.Null()], { description: 'Call length in seconds, as the provider reports it.' }),
          answered_by: Type.Union([Type.String({ enum: ['human', 'machine', 'fax', 'unknown'] }), Type.Null()]),
        }),
        Type.Null(),
      ],
      { description: 'Voice and rvm: what happened on the call (null for sms and mms; its fields null until the call is over).' },
    ),
    attempts: Type.Integer(),
    send_at: Nullable(Type.String({ format: 'date-time' })),
    expires_at: Nullable(Type.String({ format: 'date-time' })),
    status_callback: Nullable(Type.String()),
    created_at: Type.String({ format: 'date-time' }),
    updated_at: Type.String({ format: 'date-time' }),
    metadata: Type.Record(Type.String(), Type.String()),
    body_redacted: Type.Optional(Type.Boolean({ description: 'true when the body and media were removed (the account\'s body retention, or a reader not allowed to see bodies); body is then null.' })),
  },
);

export const MessageCreate = Type.Object(
  {
    to: Type.String({ description: 'Recipient in any common notation; normalised to E.164.', examples: ['+1 202 555 0100'] }),
    body: Type.Optional(Type.String({ description: 'The text. Aliases: message, text, content (give exactly one).' })),
    message: Type.Optional(Type.String()),
    text: Type.Optional(Type.String()),
    content: Type.Optional(Type.String()),
    from: Type.Optional(Type.String({ description: 'A sender of the account, or a sender pool (pool_…); when absent, the default pool or sender.' })),
    sender_pool_id: Type.Optional(Type.String({ description: 'A sender pool to pick the sender from (sticky sender, area-code match); same as from: "pool_…".' })),
    channel: Type.Optional(Type.String({ enum: ['sms', 'mms', 'voice', 'rvm'], default: 'sms' })),
    media_urls: Type.Optional(Type.Array(Type.String(), { maxItems: 10, description: 'mms: the images; voice and rvm: media_urls[0] is the audio to play (else the text is spoken). Upload files with POST /v1/media.' })),
    purpose: Type.Optional(Type.String({ enum: ['transactional', 'marketing'] })),
    send_at: Type.Optional(Type.String({ description: 'ISO 8601; the message waits as `scheduled` until then.' })),
    validity_period: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds the message may wait to be sent and delivered.' })),
    status_callback: Type.Optional(Type.String({ description: 'URL that receives this message’s signed message.* events.' })),
    metadata: Type.Optional(Type.Record(Type.String(), Type.String())),
    template: Type.Optional(Type.Object({ id: Type.Optional(Type.String()), name: Type.Optional(Type.String()), variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())) })),
  },
);

export const IdParams = Type.Object({ id: Type.String({ maxLength: 100 }) });

export const errorResponses = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBody]));
