// Row types of the Twilio-compatible API's tables (migration 014), kept beside the code that owns
// them; `twilioDb` widens the platform's Kysely instance with them (same connection).
import type { Kysely, Transaction } from 'kysely';
import type { Storage, Tx } from '../storage/database.ts';
import type { DB } from '../storage/schema.ts';

export interface TwilioAccountsTable {
  account_sid: string;
  account_id: string;
  mode: string;
  token_hash: string;
  token_sealed: string;
  created_at: number;
  updated_at: number;
}

export interface TwilioMessagesTable {
  message_id: string;
  messaging_service_sid: string | null;
  status_callback: string | null;
  deleted_at: number | null;
  created_at: number;
}

export interface TwilioNumbersTable {
  sender_id: string;
  mode: string;
  friendly_name: string | null;
  sms_url: string | null;
  sms_method: string;
  created_at: number;
  updated_at: number;
}

export interface TwilioDB extends DB {
  twilio_accounts: TwilioAccountsTable;
  twilio_messages: TwilioMessagesTable;
  twilio_numbers: TwilioNumbersTable;
}

export type TwilioTx = Transaction<TwilioDB>;

export function twilioDb(storage: Storage): Kysely<TwilioDB> {
  return storage.db as unknown as Kysely<TwilioDB>;
}

export function twilioRead(storage: Storage): Kysely<TwilioDB> {
  return storage.read as unknown as Kysely<TwilioDB>;
}

/** A platform transaction (or one of the webhook worker's), seen with these tables too. */
export function twilioTx(tx: Tx | Transaction<never>): TwilioTx {
  return tx as unknown as TwilioTx;
}
