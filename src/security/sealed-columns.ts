// Which columns are encrypted at rest: every place a message body, a media reference, a
// provider's raw payload (which carries the text of inbound messages and the first characters of
// outbound ones in SMPP receipts) or a secret lands in the database. docs/security.md lists them
// with the reason for each.
//
// A column named here is sealed on every INSERT and UPDATE made through Kysely and opened on
// every SELECT/RETURNING that names it (sealing-plugin.ts), so code reads and writes plain values
// and never calls the keyring itself. To seal a new column, add it here; `keys` (the table's
// primary key) lets a key rotation walk the table in bounded batches (key-rotation.ts).
//
// Such a column cannot be searched or compared in SQL (`where body like …` finds nothing): that
// is the point. Nothing in Switchboard searches messages by body.

export interface SealedTable {
  table: string;
  /** The primary key, in order: rotation pages through the table by it. */
  keys: string[];
  columns: string[];
  /** Blob columns (Buffers), sealed in the binary form (crypto.ts sealBytes). */
  binary?: boolean;
  /** At most this many rows per rotation batch, whatever the batch size asked for: rows that hold whole files. */
  maxBatch?: number;
}

export const SEALED_TABLES: SealedTable[] = [
  { table: 'messages', keys: ['id'], columns: ['body', 'media_urls'] },
  { table: 'message_events', keys: ['id'], columns: ['data'] },
  { table: 'outbox', keys: ['id'], columns: ['payload'] },
  { table: 'pending_receipts', keys: ['id'], columns: ['data'] },
  { table: 'simulator_messages', keys: ['connector_id', 'reference'], columns: ['receipt', 'reply_body'] },
  { table: 'webhook_endpoints', keys: ['id'], columns: ['secret', 'previous_secret'] },
  { table: 'webhook_callback_secrets', keys: ['account_id', 'mode'], columns: ['secret', 'previous_secret'] },
  { table: 'webhook_attempts', keys: ['id'], columns: ['response_body'] },
  { table: 'consent_records', keys: ['id'], columns: ['evidence'] },
  { table: 'connectors', keys: ['id'], columns: ['secrets'] },
  { table: 'settings', keys: ['key'], columns: ['value'] },
  { table: 'campaigns', keys: ['id'], columns: ['body'] },
  { table: 'campaign_recipients', keys: ['campaign_id', 'seq'], columns: ['variables'] },
  { table: 'template_versions', keys: ['template_id', 'version'], columns: ['body'] },
  // Workflows (src/workflows): definitions hold message texts; events and runs the data sent with
  // events (names, order details) and the texts of replies.
  { table: 'workflow_versions', keys: ['workflow_id', 'version'], columns: ['definition'] },
  { table: 'workflow_events', keys: ['id'], columns: ['data'] },
  { table: 'workflow_runs', keys: ['id'], columns: ['context'] },
  { table: 'workflow_steps', keys: ['run_id', 'idx'], columns: ['result'] },
  // TOTP secrets (src/users) and the Twilio-compatible auth tokens, which sign callbacks and so
  // must be readable (src/twilio-compat).
  { table: 'users', keys: ['id'], columns: ['totp_secret', 'totp_pending_secret'] },
  { table: 'twilio_accounts', keys: ['account_sid'], columns: ['token_sealed'] },
  // Uploaded images and audio, and audio rendered from a message's text (src/media): up to
  // SWITCHBOARD_MEDIA_MAX_BYTES each, so a rotation takes few at a time.
  { table: 'media', keys: ['id'], columns: ['data'], binary: true, maxBatch: 20 },
];

/** table → column → its sealing context (`table.column`, the GCM additional data). */
export function sealedColumnIndex(tables: SealedTable[] = SEALED_TABLES): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  for (const t of tables) out.set(t.table, new Map(t.columns.map((c) => [c, `${t.table}.${c}`])));
  return out;
}
