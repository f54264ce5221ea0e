// Logs: pino. A log line never carries a message body, a token, a secret, a password, a cookie,
// an Authorization header or a full phone number (issue 9, minimum necessary). Three layers:
//   1. `redact` paths for the well-known places (headers, credentials in configs);
//   2. every object logged is copied with sensitive keys (body, text, secret, password, token…)
//      replaced, at any depth, and every string in it has its phone numbers masked;
//   3. request, response and error serializers that keep only what an operator needs, with the
//      query string's secrets and the phone numbers masked.
// Call sites still log ids (msg_…, acct_…) rather than content: these layers are the net.
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-csrf-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  '*.config.password',
  '*.config.auth_token',
  '*.config.api_key',
  '*.config.api_secret',
  '*.config.auth_id',
];

/** Keys whose values never reach a log line, at any depth (compared lower-case). */
const SENSITIVE_KEYS = new Set([
  'body',
  'text',
  'message_body',
  'media_urls',
  'mediaurl',
  'reply_body',
  'payload',
  'raw',
  'evidence',
  'variables',
  'secret',
  'secrets',
  'previous_secret',
  'password',
  'passphrase',
  'client_secret',
  'access_token',
  'refresh_token',
  'token',
  'api_key',
  'api_secret',
  'auth_token',
  'authorization',
  'cookie',
  'set-cookie',
  'csrf_token',
  'x-csrf-token',
  'totp',
  'otp',
  'code_verifier',
]);

const CENSOR = '[redacted]';
// `+` or its URL encoding, then an E.164 number: 7 to 15 digits.
const PHONE = /(\+|%2[Bb])([1-9]\d{2,10})(\d{4})(?!\d)/g;
const QUERY_SECRET = /([?&](?:token|access_token|secret|client_secret|password|key|signature|sig|auth|code)=)[^&#]*/gi;

/** `+12025550123` → `+1202555****`: the last four digits hidden, the country and area kept. */
export function maskPhone(phone: string): string {
  return phone.length > 6 ? `${phone.slice(0, -4)}****` : '****';
}

/** Every phone number in a text masked as maskPhone does. */
export function maskPhonesIn(text: string): string {
  return text.includes('+') || text.includes('%2') ? text.replace(PHONE, (_m, plus: string, head: string) => `${plus}${head}****`) : text;
}

function scrubString(s: string): string {
  // A JSON.parse error quotes the start of its input, which may be a stored body.
  return maskPhonesIn(s.replace(QUERY_SECRET, `$1${CENSOR}`).replace(/"(?:[^"\\]|\\.)*" is not valid JSON/g, '"…" is not valid JSON'));
}

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null || Array.isArray(v);
}

/** A copy of `v` fit for a log line: sensitive keys censored, phone numbers masked, depth-bounded. */
export function scrubForLog(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return scrubString(v);
  if (v === null || typeof v !== 'object') return v;
  if (depth > 6) return '[…]';
  if (v instanceof Error) return v; // the err serializer scrubs it
  if (!isPlain(v)) return v; // requests, buffers, dates: their serializers (or JSON) decide
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => scrubForLog(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = SENSITIVE_KEYS.has(k.toLowerCase()) ? CENSOR : scrubForLog(x, depth + 1);
  return out;
}

const serializers = {
  err(err: unknown) {
    const s = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
    return scrubForLog(s);
  },
  req(req: { method?: string; url?: string; id?: unknown; ip?: string; socket?: { remoteAddress?: string } }) {
    return { id: req.id, method: req.method, url: req.url ? scrubString(req.url) : undefined, remote_address: req.ip ?? req.socket?.remoteAddress };
  },
  res(res: { statusCode?: number }) {
    return { status_code: res.statusCode };
  },
};

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACT_PATHS, censor: CENSOR },
      base: { service: 'switchboard' },
      serializers,
      hooks: {
        logMethod(args, method) {
          // Both the merged object and the message (and its printf arguments) are scrubbed.
          const clean = args.map((a) => scrubForLog(a)) as Parameters<typeof method>;
          return method.apply(this, clean);
        },
      },
    },
    destination,
  );
}
