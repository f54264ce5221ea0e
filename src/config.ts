// Configuration: environment variables, optionally layered over a JSON config file named by
// SWITCHBOARD_CONFIG. Validated once at start; a bad value stops the process with one line.
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no', ''])])
  .transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

// Config-file only (not environment variables): installation-wide connectors and routes, and
// senders, created or brought in line by name on every start (connectors/declared-config.ts).
const JsonObject = z.record(z.string(), z.unknown());
const DeclaredConnector = z.object({ name: z.string().min(1).max(200), type: z.string().min(1), config: JsonObject.default({}), enabled: z.boolean().default(true) });
const DeclaredSender = z.object({
  address: z.string().min(1),
  type: z.string().optional(),
  /** A connector of the file (or any installation-wide one) by name. */
  connector: z.string().optional(),
  capabilities: z.array(z.string()).optional(),
  throughput: z.number().optional(),
  /** An account id; the default account when absent. */
  account: z.string().optional(),
});
const DeclaredRoute = z.object({
  name: z.string().min(1).max(200),
  priority: z.number().int(),
  filters: JsonObject.optional(),
  connector: z.string().optional(),
  strategy: z.object({ type: z.enum(['failover', 'round_robin']), connectors: z.array(z.string()).min(1) }).optional(),
});
export type DeclaredConnector = z.infer<typeof DeclaredConnector>;
export type DeclaredSender = z.infer<typeof DeclaredSender>;
export type DeclaredRoute = z.infer<typeof DeclaredRoute>;

export const ConfigSchema = z.object({
  PORT: int(0, 65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().min(1).default('./data/switchboard.db'),
  SWITCHBOARD_ENCRYPTION_KEY: z
    .string()
    .regex(/^([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)$/, 'must be 32 bytes as 64 hex characters or base64')
    .optional(),
  /** Keys that only open (never seal): the keys a rotation is moving away from, comma-separated. */
  SWITCHBOARD_ENCRYPTION_KEYS_OLD: z
    .string()
    .regex(/^\s*([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?)(\s*[,\s]\s*([0-9a-fA-F]{64}|[A-Za-z0-9+/_-]{43}=?))*\s*$/, 'must be 32-byte keys (64 hex characters or base64) separated by commas')
    .optional(),
  SWITCHBOARD_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  SWITCHBOARD_ALLOW_PRIVATE_URLS: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SWITCHBOARD_RETRY_BASE_MS: int(1, 3_600_000).default(1000),
  SWITCHBOARD_RETRY_MAX_MS: int(1, 86_400_000).default(600_000),
  /** Validity given to a message that names none: how long it may wait to be sent and delivered. */
  SWITCHBOARD_DEFAULT_VALIDITY_S: int(1, 30 * 86400).default(86400),
  /** Validity of a campaign's messages: how long one may wait to go out before it expires (2 h by default). */
  SWITCHBOARD_CAMPAIGN_VALIDITY_S: int(60, 30 * 86400).default(7200),
  SWITCHBOARD_MAX_SEGMENTS: int(1, 50).default(10),
  SWITCHBOARD_BODY_LIMIT_BYTES: int(1024, 50 * 1024 * 1024).default(1024 * 1024),
  SWITCHBOARD_OAUTH_TOKEN_TTL_S: int(60, 86400).default(3600),
  /** A dashboard session ends after this long without a request… */
  SWITCHBOARD_SESSION_IDLE_S: int(60, 7 * 86400).default(1800),
  /** …and this long after sign-in, whatever happens. */
  SWITCHBOARD_SESSION_MAX_S: int(300, 30 * 86400).default(43200),
  /** How often an idle worker looks for due work; new work in the same process wakes it at once. */
  SWITCHBOARD_POLL_MS: int(5, 60_000).default(200),
  /** The idle poll of a worker while LISTEN/NOTIFY (PostgreSQL) wakes it: a fallback only. */
  SWITCHBOARD_LISTEN_POLL_MS: int(5, 600_000).default(1000),
  /** How long a worker's hold on a stateful connector (an SMPP bind) lasts unless renewed; renewed every third of it. */
  SWITCHBOARD_CONNECTOR_LEASE_MS: int(1000, 600_000).default(10_000),
  /** An account with this many messages queued or sending gets 429 RATE_LIMITED on new ones. */
  SWITCHBOARD_MAX_ACCOUNT_BACKLOG: int(1, 1_000_000_000).default(100_000),
  /** Requests per second per API key or OAuth client, and per account; 0 turns a limit off (counted per process). */
  SWITCHBOARD_RATE_LIMIT_PER_CREDENTIAL: int(0, 1_000_000).default(5000),
  SWITCHBOARD_RATE_LIMIT_PER_ACCOUNT: int(0, 1_000_000).default(10_000),
  /** Connection limits of the HTTP server (`start`): open sockets, and how long headers, a whole request and an idle keep-alive may take. */
  SWITCHBOARD_MAX_CONNECTIONS: int(1, 1_000_000).default(10_000),
  SWITCHBOARD_HEADERS_TIMEOUT_MS: int(1000, 600_000).default(15_000),
  SWITCHBOARD_REQUEST_TIMEOUT_MS: int(1000, 3_600_000).default(120_000),
  SWITCHBOARD_KEEPALIVE_TIMEOUT_MS: int(1000, 600_000).default(65_000),
  SWITCHBOARD_SIMULATOR_RECEIPT_MS: int(0, 60_000).default(150),
  SWITCHBOARD_SIMULATOR_SLOW_MS: int(0, 120_000).default(5000),
  SWITCHBOARD_SQLITE_SYNCHRONOUS: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
  SWITCHBOARD_DEFAULT_ACCOUNT_NAME: z.string().min(1).max(200).default('Default'),
  /** Webhook retry delays, the last repeating until the window has passed (CONTRACT §7), e.g. `5s,30s,2m,10m,30m,1h,2h`. */
  SWITCHBOARD_WEBHOOK_SCHEDULE: z.string().regex(/^\d+(ms|s|m|h)(,\d+(ms|s|m|h))*$/, 'must be durations like 5s,30s,2m,1h').default('5s,30s,2m,10m,30m,1h,2h'),
  SWITCHBOARD_WEBHOOK_RETRY_WINDOW: z.string().regex(/^\d+(ms|s|m|h)$/, 'must be a duration like 24h').default('24h'),
  SWITCHBOARD_WEBHOOK_TIMEOUT_MS: int(50, 120_000).default(10_000),
  /** Largest media upload (audio or image), in bytes. */
  SWITCHBOARD_MEDIA_MAX_BYTES: int(1024, 100 * 1024 * 1024).default(5 * 1024 * 1024),
  /** Text to speech for voice/rvm routes that need audio: the program (a name on PATH or a path), its voice, the converter to telephony audio, and how long each may run. */
  SWITCHBOARD_TTS_PROGRAM: z.string().min(1).default('espeak-ng'),
  SWITCHBOARD_TTS_VOICE: z.string().regex(/^[A-Za-z0-9_+-]{1,40}$/, 'must be an espeak-ng voice name such as en-us').default('en-us'),
  SWITCHBOARD_TTS_CONVERTER: z.string().min(1).default('sox'),
  SWITCHBOARD_TTS_TIMEOUT_MS: int(100, 120_000).default(15_000),
  connectors: z.array(DeclaredConnector).optional(),
  senders: z.array(DeclaredSender).optional(),
  routes: z.array(DeclaredRoute).optional(),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined> = process.env, overrides: Partial<Config> = {}): Config {
  let fileValues: Record<string, unknown> = {};
  if (env.SWITCHBOARD_CONFIG) {
    try {
      fileValues = JSON.parse(readFileSync(env.SWITCHBOARD_CONFIG, 'utf8'));
    } catch (err) {
      throw new ConfigError(`SWITCHBOARD_CONFIG: cannot read ${env.SWITCHBOARD_CONFIG}: ${(err as Error).message}`);
    }
  }
  const raw: Record<string, unknown> = { ...fileValues };
  for (const key of Object.keys(ConfigSchema.shape)) {
    if (key !== key.toUpperCase()) continue; // the file-only sections
    const v = env[key];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  Object.assign(raw, overrides);
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`Invalid configuration: ${issue.path.join('.')}: ${issue.message}`);
  }
  return parsed.data;
}
