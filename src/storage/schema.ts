// Row types of every table, as Kysely sees them. Times are integer milliseconds since the epoch;
// JSON columns are text and are parsed by the module that owns the table.
import type { Generated } from 'kysely';

export interface AccountsTable {
  id: string;
  name: string;
  settings: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  account_id: string;
  name: string | null;
  mode: string;
  scopes: string;
  secret_hash: string;
  prefix: string;
  created_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  /** The user, API key or OAuth client that created it, or `cli`; null before migration 012. */
  created_by: string | null;
}

export interface OAuthClientsTable {
  id: string;
  account_id: string;
  name: string | null;
  mode: string;
  scopes: string;
  secret_hash: string;
  created_at: number;
  revoked_at: number | null;
  created_by: string | null;
}

export interface SettingsTable {
  key: string;
  value: string;
}

export interface ConnectorsTable {
  id: string;
  account_id: string | null;
  name: string;
  type: string;
  config: string;
  /** Credentials, sealed (src/security/crypto.ts); never returned by the API. */
  secrets: string | null;
  enabled: number;
  created_at: number;
  updated_at: number;
}

export interface SendersTable {
  id: string;
  account_id: string;
  address: string;
  type: string;
  connector_id: string | null;
  capabilities: string;
  throughput: number | null;
  is_default: number;
  created_at: number;
}

export interface SenderPoolsTable {
  id: string;
  account_id: string;
  name: string;
  sticky: number;
  area_code_match: number;
  is_default: number;
  created_at: number;
  updated_at: number;
}

export interface SenderPoolMembersTable {
  pool_id: string;
  sender_id: string;
  position: number;
}

export interface SenderPoolStickyTable {
  pool_id: string;
  recipient: string;
  sender_id: string;
  created_at: number;
}

export interface RoutesTable {
  id: string;
  account_id: string | null;
  name: string | null;
  priority: number;
  filters: string;
  connector_id: string | null;
  strategy: string | null;
  created_at: number;
}

export interface MessagesTable {
  id: string;
  account_id: string;
  mode: string;
  direction: string;
  channel: string;
  to_addr: string;
  from_addr: string | null;
  body: string | null;
  media_urls: string | null;
  status: string;
  segments: number;
  encoding: string;
  purpose: string;
  provider_message_id: string | null;
  connector_id: string | null;
  error_class: string | null;
  error_code: string | null;
  error_message: string | null;
  provider_code: string | null;
  metadata: string;
  status_callback: string | null;
  send_at: number | null;
  expires_at: number | null;
  next_attempt_at: number | null;
  attempts: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  /** The throughput slot reserved for this message, and on which connector (dispatch/throttle.ts). */
  reserved_slot?: number | null;
  reserved_connector?: string | null;
  /** Voice and rvm: what happened on the call (answered, machine, no_answer, busy, failed), migration 010. */
  voice_outcome?: string | null;
  voice_duration_s?: number | null;
  voice_answered_by?: string | null;
  /** When retention removed the body, media and raw payloads (src/security/retention.ts). */
  redacted_at?: number | null;
  created_at: number;
  updated_at: number;
}

export interface MessageEventsTable {
  id: Generated<number>;
  message_id: string;
  status: string;
  at: number;
  data: string;
}

export interface OutboxTable {
  id: Generated<number>;
  account_id: string;
  mode: string;
  type: string;
  message_id: string | null;
  payload: string;
  created_at: number;
}

export interface IdempotencyKeysTable {
  account_id: string;
  mode: string;
  key: string;
  request_hash: string;
  message_id: string;
  created_at: number;
}

export interface ConsentRecordsTable {
  id: Generated<number>;
  account_id: string;
  mode: string;
  phone: string;
  status: string;
  purpose: string;
  channel: string;
  source: string;
  evidence: string;
  created_at: number;
}

export interface SuppressionsTable {
  account_id: string;
  mode: string;
  phone: string;
  reason: string;
  source: string;
  created_at: number;
}

export interface ReviewItemsTable {
  id: string;
  account_id: string;
  mode: string;
  message_id: string;
  error_class: string;
  reason: string;
  status: string;
  resolution: string | null;
  note: string | null;
  created_at: number;
  resolved_at: number | null;
}

export interface PendingReceiptsTable {
  id: Generated<number>;
  connector_id: string;
  provider_message_id: string;
  data: string;
  received_at: number;
  applied_at: number | null;
  message_id: string | null;
}

export interface SimulatorMessagesTable {
  connector_id: string;
  reference: string;
  provider_id: string | null;
  to_addr: string;
  from_addr: string | null;
  channel: string;
  submits: number;
  created_at: number;
  receipt_due_at: number | null;
  receipt: string | null;
  reply_due_at: number | null;
  reply_body: string | null;
}

export interface ThrottleStateTable {
  key: string;
  tat: number;
}

/** Which worker process holds a stateful connector's session, until when (ms since epoch). */
export interface ConnectorLeasesTable {
  connector_id: string;
  owner: string;
  expires_at: number;
}

export interface ContactsTable {
  id: string;
  account_id: string;
  mode: string;
  phone: string;
  name: string | null;
  time_zone: string | null;
  owner: string | null;
  tags: string;
  custom_fields: string;
  created_at: number;
  updated_at: number;
}

export interface ConversationReadsTable {
  conversation_id: string;
  user_id: string;
  read_at: number;
}

export interface ConversationsTable {
  id: string;
  account_id: string;
  mode: string;
  contact_id: string;
  contact_phone: string;
  number: string;
  last_message_id: string | null;
  last_message_at: number;
  last_direction: string | null;
  created_at: number;
}

export interface ContactImportsTable {
  id: string;
  account_id: string;
  mode: string;
  status: string;
  filename: string | null;
  bytes_total: number | null;
  bytes_read: number;
  rows_processed: number;
  created: number;
  updated: number;
  failed: number;
  errors: string;
  started_at: number;
  finished_at: number | null;
}

export interface KeywordRepliesTable {
  message_id: string;
  account_id: string;
  mode: string;
  inbound_message_id: string;
  kind: string;
  created_at: number;
}

export interface TemplatesTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  version: number;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
}

export interface TemplateVersionsTable {
  template_id: string;
  version: number;
  body: string;
  /** JSON array of the declared variable names. */
  variables: string;
  created_at: number;
}

export interface ListsTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  created_at: number;
}

export interface ListMembersTable {
  list_id: string;
  contact_id: string;
  added_at: number;
}

export interface SegmentsTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  filter: string;
  created_at: number;
}

export interface CampaignsTable {
  id: string;
  account_id: string;
  mode: string;
  name: string;
  status: string;
  audience: string;
  template_id: string | null;
  template_version: number | null;
  /** The Liquid text rendered per recipient (the pinned template version's, or the campaign's own). */
  body: string;
  variables: string;
  channel: string;
  purpose: string;
  from_addr: string | null;
  start_at: number | null;
  rate_per_minute: number | null;
  send_window: string | null;
  validity_s: number;
  total: number;
  expanded: number;
  expand_cursor: string | null;
  released: number;
  pace_base_at: number | null;
  pace_base_count: number;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
}

export interface CampaignRecipientsTable {
  campaign_id: string;
  seq: number;
  phone: string;
  contact_id: string | null;
  variables: string;
  /** pending → queued (a message exists) | suppressed | failed | canceled. */
  status: string;
  release_at: number;
  message_id: string | null;
  error_code: string | null;
  error_message: string | null;
  updated_at: number;
}

export interface CampaignLinksTable {
  code: string;
  campaign_id: string;
  url: string;
  created_at: number;
}

export interface LinkClicksTable {
  id: Generated<number>;
  campaign_id: string;
  code: string;
  seq: number;
  message_id: string | null;
  contact_id: string | null;
  user_agent: string | null;
  at: number;
}

export interface MediaTable {
  id: string;
  account_id: string;
  mode: string;
  token: string;
  content_type: string;
  size: number;
  sha256: string;
  data: Buffer;
  source: string;
  tts_key: string | null;
  created_at: number;
}

export interface UsersTable {
  id: string;
  account_id: string;
  email: string;
  /** Trimmed and lower-cased: the unique key within the account. */
  email_norm: string;
  password_hash: string;
  role: string;
  /** Sealed (src/security/crypto.ts); set once enrolment is verified. */
  totp_secret: string | null;
  totp_pending_secret: string | null;
  /** The last 30 s TOTP step accepted: a code is good once. */
  totp_last_step: number | null;
  disabled_at: number | null;
  created_by: string | null;
  created_at: number;
  updated_at: number;
  password_changed_at: number;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  account_id: string;
  mode: string;
  ip: string | null;
  user_agent: string | null;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export interface SignInThrottleTable {
  key: string;
  failures: number;
  window_started_at: number;
  locked_until: number | null;
}

export interface AuditLogTable {
  id: string;
  chain: string;
  seq: number;
  account_id: string | null;
  mode: string | null;
  at: number;
  actor_type: string;
  actor_id: string;
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  details: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadsTable {
  chain: string;
  seq: number;
  hash: string;
}

export interface KeyRotationsTable {
  id: string;
  /** running → completed | failed | canceled */
  status: string;
  /** The key everything is being re-sealed with (the primary of the process that asked). */
  target_key_id: string;
  batch_size: number;
  /** Position: the entry of SEALED_TABLES being walked, and the last primary key done there (JSON). */
  table_index: number;
  cursor: string | null;
  total: number;
  scanned: number;
  resealed: number;
  unreadable: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface RetentionCursorsTable {
  account_id: string;
  mode: string;
  /** The last message id the retention sweep has passed, in this account and mode. */
  cursor: string;
  updated_at: number;
}

export interface RetentionDeferredTable {
  message_id: string;
  account_id: string;
  created_at: number;
}

export interface DB {
  media: MediaTable;
  users: UsersTable;
  sessions: SessionsTable;
  sign_in_throttle: SignInThrottleTable;
  audit_log: AuditLogTable;
  audit_heads: AuditHeadsTable;
  key_rotations: KeyRotationsTable;
  retention_cursors: RetentionCursorsTable;
  retention_deferred: RetentionDeferredTable;
  templates: TemplatesTable;
  template_versions: TemplateVersionsTable;
  lists: ListsTable;
  list_members: ListMembersTable;
  segments: SegmentsTable;
  campaigns: CampaignsTable;
  campaign_recipients: CampaignRecipientsTable;
  campaign_links: CampaignLinksTable;
  link_clicks: LinkClicksTable;
  throttle_state: ThrottleStateTable;
  connector_leases: ConnectorLeasesTable;
  accounts: AccountsTable;
  api_keys: ApiKeysTable;
  oauth_clients: OAuthClientsTable;
  settings: SettingsTable;
  connectors: ConnectorsTable;
  senders: SendersTable;
  routes: RoutesTable;
  sender_pools: SenderPoolsTable;
  sender_pool_members: SenderPoolMembersTable;
  sender_pool_sticky: SenderPoolStickyTable;
  messages: MessagesTable;
  message_events: MessageEventsTable;
  outbox: OutboxTable;
  idempotency_keys: IdempotencyKeysTable;
  consent_records: ConsentRecordsTable;
  suppressions: SuppressionsTable;
  review_items: ReviewItemsTable;
  pending_receipts: PendingReceiptsTable;
  simulator_messages: SimulatorMessagesTable;
  contacts: ContactsTable;
  conversations: ConversationsTable;
  conversation_reads: ConversationReadsTable;
  contact_imports: ContactImportsTable;
  keyword_replies: KeywordRepliesTable;
}
