// The connector interface: how the platform talks to a carrier or provider. One small surface,
// one implementation per folder, one line in connector-registry.ts per type.
//
//   submit    — hand one message to the carrier; answers accepted (with the provider's id) or an
//               error already mapped to one of the seven error classes.
//   lookup    — optional: ask the carrier whether it already has a message we submitted, by OUR
//               reference (the message id). Used to resolve an attempt left "in doubt" by a crash.
//   sink      — where a connector reports what comes back asynchronously: delivery receipts and
//               inbound (mobile-originated) messages.
import type { Clock } from '../clock.ts';
import type { ErrorClass } from '../errors.ts';
import type { Storage } from '../storage/database.ts';
import type { VoiceResult } from '../voice/voice-outcome.ts';

export type Channel = 'sms' | 'mms' | 'voice' | 'rvm';

export interface OutboundMessage {
  /** Our message id, passed to the carrier as the client reference where it takes one. */
  reference: string;
  accountId: string;
  mode: string;
  channel: Channel;
  to: string;
  from: string | null;
  body: string | null;
  mediaUrls: string[];
  encoding: 'GSM-7' | 'UCS-2';
  segments: number;
  /** Absolute time after which the carrier should give up. */
  expiresAt: number | null;
  attempt: number;
}

export type SubmitResult =
  | { ok: true; providerMessageId: string; raw?: unknown }
  | { ok: false; errorClass: ErrorClass; code: string; message: string; providerCode?: string; raw?: unknown; retryAfterMs?: number };

export interface Receipt {
  providerMessageId: string;
  status: 'delivered' | 'undelivered' | 'failed' | 'expired';
  errorClass?: ErrorClass;
  code?: string;
  message?: string;
  providerCode?: string;
  raw?: unknown;
  /** Voice and rvm: the call's outcome, duration and who answered (voice/voice-outcome.ts). */
  voice?: VoiceResult;
}

export interface InboundMessage {
  from: string;
  to: string;
  body: string;
  channel?: Channel;
  providerMessageId?: string;
  mediaUrls?: string[];
  raw?: unknown;
  /** When the connector knows which of our messages this answers (the simulator does). */
  inReplyTo?: string;
  /** When the connector knows the tenant (the simulator's inject route does). */
  accountId?: string;
  mode?: string;
}

export interface ConnectorSink {
  receipt(connectorId: string, receipt: Receipt): Promise<void>;
  inbound(connectorId: string, message: InboundMessage): Promise<void>;
}

export interface ConnectorCapabilities {
  channels: Channel[];
  /** Whether lookup() can find a message by our reference. */
  lookup: boolean;
  /** Submits in flight at once, per connector instance. */
  maxInFlight: number;
}

export interface ConnectorState {
  status: 'up' | 'down' | 'starting' | 'stopped';
  in_flight: number;
  last_error: string | null;
  [key: string]: unknown;
}

export interface Connector {
  readonly id: string;
  readonly type: string;
  readonly capabilities: ConnectorCapabilities;
  start(): Promise<void>;
  stop(): Promise<void>;
  submit(message: OutboundMessage): Promise<SubmitResult>;
  lookup?(reference: string): Promise<SubmitResult | null>;
  state(): ConnectorState;
  /**
   * Optional: HTTP providers report receipts and inbound messages by calling us back. The
   * connector verifies the provider's signature (throwing AppError AUTH_FAILED when it does not
   * hold, before anything changes), reports to the sink, and says what to answer.
   */
  handleWebhook?(req: WebhookRequest): Promise<WebhookResponse>;
}

export interface WebhookRequest {
  kind: 'status' | 'inbound';
  method: string;
  /** Path and query as requested, e.g. `/hooks/conn_1/status?x=1`. */
  path: string;
  /** The public base URL the provider called, unless the connector's config names its own. */
  baseUrl: string;
  headers: Record<string, string | string[] | undefined>;
  /** The body exactly as received: signatures are computed over it. */
  rawBody: string;
}

export interface WebhookResponse {
  status: number;
  contentType?: string;
  body?: string;
}

export interface ConnectorRow {
  id: string;
  account_id: string | null;
  name: string;
  type: string;
  config: Record<string, unknown>;
}

export interface ConnectorDeps {
  storage: Storage;
  clock: Clock;
  sink: ConnectorSink;
  /** Receipt delay and slow-submit delay for the simulator, from configuration. */
  simulator: { receiptDelayMs: number; slowSubmitMs: number; pollMs: number };
  /** SWITCHBOARD_PUBLIC_URL: where providers reach our /hooks routes. */
  publicUrl?: string;
  /** Text to speech, for types that need audio (CONNECTOR_NEEDS_AUDIO): audio of a text, by public URL. */
  speech?: SpeechRenderer;
}

export interface SpeechRenderer {
  /** Throws (SpeechUnavailableError or another error) when it cannot render. */
  render(req: { accountId: string; mode: string; text: string }): Promise<{ mediaId: string; url: string; contentType: string; cached: boolean }>;
}

export type ConnectorFactory = (row: ConnectorRow, deps: ConnectorDeps) => Connector;
