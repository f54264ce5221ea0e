// Row types of the webhook tables (migration 002), as Kysely sees them. Kept beside the code that
// owns the tables; `webhookDb` widens the platform's Kysely instance with them.
import type { Kysely, Transaction } from 'kysely';
import type { Storage } from '../storage/database.ts';
import type { DB, OutboxTable } from '../storage/schema.ts';

export interface WebhookEndpointsTable {
  id: string;
  account_id: string;
  mode: string;
  url: string;
  description: string | null;
  /** JSON array of event types; empty means every event. */
  events: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  enabled: number;
  disabled_reason: string | null;
  /** 0: message bodies and media are left out of this endpoint's payloads (minimum necessary). */
  include_body?: number;
  created_at: number;
  updated_at: number;
}

export interface WebhookCallbackSecretsTable {
  account_id: string;
  mode: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  created_at: number;
  updated_at: number;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface WebhookDeliveriesTable {
  id: string;
  account_id: string;
  mode: string;
  endpoint_id: string | null;
  target: string;
  url: string;
  outbox_id: number;
  message_id: string | null;
  event_type: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number | null;
  schedule_started_at: number;
  last_status_code: number | null;
  last_error: string | null;
  lease_owner: string | null;
  lease_expires_at: number | null;
  created_at: number;
  updated_at: number;
  delivered_at: number | null;
}

export interface WebhookAttemptsTable {
  id: import('kysely').Generated<number>;
  delivery_id: string;
  attempt: number;
  request_id: string;
  url: string;
  at: number;
  response_status: number | null;
  latency_ms: number;
  response_body: string | null;
  error: string | null;
}

export interface InboundRoutesTable {
  id: string;
  account_id: string;
  mode: string;
  priority: number;
  /** JSON: {number?, keyword?, owner?}; every given field must match. */
  match: string;
  endpoint_id: string;
  created_at: number;
}

export interface WebhookDB extends Omit<DB, 'outbox'> {
  inbound_routes: InboundRoutesTable;
  outbox: OutboxTable & { fanned_out_at: number | null };
  webhook_endpoints: WebhookEndpointsTable;
  webhook_callback_secrets: WebhookCallbackSecretsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
}

export type WebhookTx = Transaction<WebhookDB>;

/** The platform's database handle, typed with the webhook tables too (same connection). */
export function webhookDb(storage: Storage): Kysely<WebhookDB> {
  return storage.db as unknown as Kysely<WebhookDB>;
}
