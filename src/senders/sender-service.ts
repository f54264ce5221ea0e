// Senders (CONTRACT §9): the addresses an account sends from — long codes, toll-free numbers,
// short codes, alphanumeric ids — with their connector, capabilities and throughput.
import { CONFIG_FILE, recordBy, type AuditContext } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { transaction } from '../storage/transactions.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { isAlphanumericSender, normaliseNumber } from '../messages/phone.ts';
import type { Storage } from '../storage/database.ts';
import type { SendersTable } from '../storage/schema.ts';
import type { Throttle } from '../dispatch/throttle.ts';
import { configChanged } from '../storage/read-cache.ts';

export const SENDER_TYPES = ['long_code', 'toll_free', 'short_code', 'alphanumeric'] as const;
const CAPABILITIES = ['sms', 'mms', 'voice', 'rvm'];

export interface SenderView {
  id: string;
  object: 'sender';
  address: string;
  type: string;
  connector_id: string | null;
  capabilities: string[];
  throughput: number | null;
  default: boolean;
  created_at: string;
}

const view = (r: SendersTable): SenderView => ({
  id: r.id,
  object: 'sender',
  address: r.address,
  type: r.type,
  connector_id: r.connector_id,
  capabilities: JSON.parse(r.capabilities),
  throughput: r.throughput,
  default: r.is_default === 1,
  created_at: new Date(r.created_at).toISOString(),
});

export class SenderService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private throttle: Throttle,
  ) {}

  private address(type: string, input: unknown): string {
    if (typeof input !== 'string' || input.trim() === '') throw validation('address', 'address is required.');
    if (type === 'short_code') {
      if (!/^\d{3,8}$/.test(input.trim())) throw validation('address', 'A short code is 3 to 8 digits.');
      return input.trim();
    }
    if (type === 'alphanumeric') {
      if (!isAlphanumericSender(input.trim())) throw validation('address', 'An alphanumeric sender id is 3 to 11 letters, digits or spaces, with at least one letter.');
      return input.trim();
    }
    return normaliseNumber(input, 'address').e164;
  }

  private async parse(accountId: string, input: Record<string, unknown>): Promise<Pick<SendersTable, 'address' | 'type' | 'connector_id' | 'capabilities' | 'throughput'>> {
    const type = input.type ?? 'long_code';
    if (typeof type !== 'string' || !(SENDER_TYPES as readonly string[]).includes(type)) throw validation('type', `type must be one of ${SENDER_TYPES.join(', ')}.`);
    const address = this.address(type, input.address);
    let connectorId: string | null = null;
    if (input.connector_id !== undefined && input.connector_id !== null) {
      if (typeof input.connector_id !== 'string') throw validation('connector_id', 'connector_id must be a connector id.');
      const c = await this.storage.db.selectFrom('connectors').select(['id', 'account_id']).where('id', '=', input.connector_id).executeTakeFirst();
      if (!c || (c.account_id !== null && c.account_id !== accountId)) throw validation('connector_id', `No connector ${input.connector_id} in this account.`);
      connectorId = c.id;
    }
    const capabilities = input.capabilities ?? ['sms'];
    if (!Array.isArray(capabilities) || capabilities.length === 0 || capabilities.some((c) => typeof c !== 'string' || !CAPABILITIES.includes(c))) {
      throw validation('capabilities', `capabilities must list some of ${CAPABILITIES.join(', ')}.`);
    }
    const throughput = input.throughput ?? null;
    if (throughput !== null && (typeof throughput !== 'number' || !(throughput > 0) || throughput > 10_000)) throw validation('throughput', 'throughput must be messages per second, above 0 and at most 10,000.');
    return { address, type, connector_id: connectorId, capabilities: JSON.stringify([...new Set(capabilities)]), throughput: throughput as number | null };
  }

  async create(accountId: string, input: Record<string, unknown>, by?: Principal | AuditContext): Promise<SenderView> {
    const fields = await this.parse(accountId, input);
    const exists = await this.storage.db.selectFrom('senders').select('id').where('account_id', '=', accountId).where('address', '=', fields.address).executeTakeFirst();
    if (exists) throw validation('address', `${fields.address} is already a sender of this account.`, { id: exists.id });
    const now = this.clock.now();
    const row: SendersTable = { id: newId('sender', now), account_id: accountId, ...fields, is_default: 0, created_at: now };
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('senders').values(row).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'sender.created', target: { type: 'sender', id: row.id }, details: { address: row.address, type: row.type, connector_id: row.connector_id }, at: now });
    });
    this.changed();
    return view(row);
  }

  /** A sender declared in the config file: created, or its connector, capabilities and throughput set, by address. */
  async upsert(accountId: string, input: Record<string, unknown>): Promise<string> {
    const fields = await this.parse(accountId, input);
    const exists = await this.storage.db.selectFrom('senders').select('id').where('account_id', '=', accountId).where('address', '=', fields.address).executeTakeFirst();
    if (!exists) return (await this.create(accountId, input, CONFIG_FILE)).id;
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('senders').set(fields).where('id', '=', exists.id).execute();
      await recordBy(tx, CONFIG_FILE, { accountId, mode: null, action: 'sender.updated', target: { type: 'sender', id: exists.id }, details: { address: fields.address, connector_id: fields.connector_id }, at: this.clock.now() });
    });
    this.changed();
    return exists.id;
  }

  async list(accountId: string): Promise<SenderView[]> {
    const rows = await this.storage.db.selectFrom('senders').selectAll().where('account_id', '=', accountId).orderBy('created_at').execute();
    return rows.map(view);
  }

  async remove(accountId: string, id: string, by?: Principal | AuditContext): Promise<{ id: string; deleted: true }> {
    const row = await this.storage.db.selectFrom('senders').select(['id', 'is_default', 'address']).where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No sender ${id} in this account.`, { id });
    await transaction(this.storage.db, async (tx) => {
      // Out of every pool too; its recipients get another number of the pool from now on.
      await tx.deleteFrom('sender_pool_members').where('sender_id', '=', id).execute();
      await tx.deleteFrom('senders').where('id', '=', id).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'sender.deleted', target: { type: 'sender', id }, details: { address: row.address }, at: this.clock.now() });
    });
    this.changed();
    return { id, deleted: true };
  }

  /** After any write: this process's throughput limits and configuration caches read anew. */
  private changed(): void {
    this.throttle.invalidate();
    configChanged(this.storage);
  }
}
