// Sender pools as the API sees them (/v1/sender-pools): a name, the account's senders in it (by
// id or by address), whether a recipient keeps the number they first heard from (sticky) and
// whether numbers with the recipient's area code come first. Choosing from a pool is in
// sender-pools.ts.
import { recordBy, type AuditContext } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import { parseNumber } from '../messages/phone.ts';
import type { Storage, Tx } from '../storage/database.ts';
import type { SenderPoolsTable } from '../storage/schema.ts';
import { configChanged } from '../storage/read-cache.ts';
import { transaction } from '../storage/transactions.ts';
import { sidOf } from '../twilio-compat/sids.ts';

const MAX_MEMBERS = 1000;

export interface SenderPoolView {
  id: string;
  object: 'sender_pool';
  /** The pool as a Twilio messaging service (MG…), for MessagingServiceSid on /2010-04-01. */
  messaging_service_sid: string;
  name: string;
  sender_ids: string[];
  addresses: string[];
  sticky: boolean;
  area_code_match: boolean;
  default: boolean;
  created_at: string;
  updated_at: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class SenderPoolService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  private async view(db: Storage['db'] | Tx, row: SenderPoolsTable): Promise<SenderPoolView> {
    const members = await db
      .selectFrom('sender_pool_members as m')
      .innerJoin('senders as s', 's.id', 'm.sender_id')
      .select(['s.id', 's.address'])
      .where('m.pool_id', '=', row.id)
      .orderBy('m.position')
      .execute();
    return {
      id: row.id,
      object: 'sender_pool',
      messaging_service_sid: sidOf(row.id),
      name: row.name,
      sender_ids: members.map((m) => m.id),
      addresses: members.map((m) => m.address),
      sticky: row.sticky === 1,
      area_code_match: row.area_code_match === 1,
      default: row.is_default === 1,
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
    };
  }

  /** The sender ids a request names, by id (`sender_ids`) or by address (`addresses`), checked. */
  private async members(accountId: string, input: Record<string, unknown>, required: boolean): Promise<string[] | undefined> {
    if (input.sender_ids !== undefined && input.addresses !== undefined) throw validation('addresses', 'Give sender_ids or addresses, not both.');
    const field = input.addresses !== undefined ? 'addresses' : 'sender_ids';
    const list = input[field];
    if (list === undefined) {
      if (required) throw validation('sender_ids', 'A pool needs sender_ids or addresses: the senders in it.');
      return undefined;
    }
    if (!Array.isArray(list) || list.length === 0 || list.length > MAX_MEMBERS) throw validation(field, `${field} must list 1 to ${MAX_MEMBERS} senders.`);
    const senders = await this.storage.db.selectFrom('senders').select(['id', 'address']).where('account_id', '=', accountId).execute();
    const ids: string[] = [];
    list.forEach((v, i) => {
      if (typeof v !== 'string') throw validation(`${field}[${i}]`, `${field}[${i}] must be a string.`);
      const address = field === 'addresses' ? (parseNumber(v)?.e164 ?? v.trim()) : null;
      const found = senders.find((s) => (address === null ? s.id === v : s.address === address));
      if (!found) throw validation(`${field}[${i}]`, `${v} is not a sender of this account.`, { value: v });
      if (!ids.includes(found.id)) ids.push(found.id);
    });
    return ids;
  }

  private flags(input: Record<string, unknown>): { sticky?: number; area_code_match?: number; is_default?: number } {
    const out: { sticky?: number; area_code_match?: number; is_default?: number } = {};
    for (const [field, column] of [['sticky', 'sticky'], ['area_code_match', 'area_code_match'], ['default', 'is_default']] as const) {
      const v = input[field];
      if (v === undefined) continue;
      if (typeof v !== 'boolean') throw validation(field, `${field} must be true or false.`);
      out[column] = v ? 1 : 0;
    }
    return out;
  }

  private name(v: unknown): string {
    if (typeof v !== 'string' || v.trim() === '' || v.length > 200) throw validation('name', 'name must be 1 to 200 characters.');
    return v.trim();
  }

  private async checkNameFree(accountId: string, name: string, except?: string): Promise<void> {
    const clash = await this.storage.db.selectFrom('sender_pools').select('id').where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
    if (clash && clash.id !== except) throw validation('name', `This account already has a sender pool named ${name}.`, { id: clash.id });
  }

  private async write(tx: Tx, accountId: string, poolId: string, memberIds: string[] | undefined, isDefault: number | undefined): Promise<void> {
    if (isDefault === 1) await tx.updateTable('sender_pools').set({ is_default: 0 }).where('account_id', '=', accountId).where('id', '!=', poolId).execute();
    if (memberIds) {
      await tx.deleteFrom('sender_pool_members').where('pool_id', '=', poolId).execute();
      await tx
        .insertInto('sender_pool_members')
        .values(memberIds.map((sender_id, position) => ({ pool_id: poolId, sender_id, position })))
        .execute();
    }
  }

  async create(accountId: string, input: unknown, by?: Principal | AuditContext): Promise<SenderPoolView> {
    if (!isObject(input)) throw validation('body', 'The request body must be a JSON object.');
    const name = this.name(input.name);
    const flags = this.flags(input);
    const memberIds = (await this.members(accountId, input, true))!;
    await this.checkNameFree(accountId, name);
    const now = this.clock.now();
    const row: SenderPoolsTable = { id: newId('pool', now), account_id: accountId, name, sticky: flags.sticky ?? 1, area_code_match: flags.area_code_match ?? 1, is_default: flags.is_default ?? 0, created_at: now, updated_at: now };
    const view = await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('sender_pools').values(row).execute();
      await this.write(tx, accountId, row.id, memberIds, row.is_default);
      await recordBy(tx, by, { accountId, mode: null, action: 'sender_pool.created', target: { type: 'sender_pool', id: row.id }, details: { name, sender_ids: memberIds }, at: now });
      return this.view(tx, row);
    });
    configChanged(this.storage);
    return view;
  }

  private async row(accountId: string, id: string): Promise<SenderPoolsTable> {
    const row = await this.storage.db.selectFrom('sender_pools').selectAll().where('id', '=', id).where('account_id', '=', accountId).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No sender pool ${id} in this account.`, { id });
    return row;
  }

  async get(accountId: string, id: string): Promise<SenderPoolView> {
    return this.view(this.storage.db, await this.row(accountId, id));
  }

  async list(accountId: string): Promise<SenderPoolView[]> {
    const rows = await this.storage.db.selectFrom('sender_pools').selectAll().where('account_id', '=', accountId).orderBy('created_at').execute();
    return Promise.all(rows.map((r) => this.view(this.storage.db, r)));
  }

  /** Changes what the body names; `sender_ids`/`addresses` replace the membership. Recipients keep their sticky number while it stays in the pool. */
  async update(accountId: string, id: string, input: unknown, by?: Principal | AuditContext): Promise<SenderPoolView> {
    if (!isObject(input)) throw validation('body', 'The request body must be a JSON object.');
    const current = await this.row(accountId, id);
    const name = input.name === undefined ? undefined : this.name(input.name);
    const flags = this.flags(input);
    const memberIds = await this.members(accountId, input, false);
    if (name !== undefined) await this.checkNameFree(accountId, name, id);
    const patch = { ...flags, ...(name !== undefined ? { name } : {}), updated_at: this.clock.now() };
    const view = await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('sender_pools').set(patch).where('id', '=', id).execute();
      await this.write(tx, accountId, id, memberIds, flags.is_default);
      await recordBy(tx, by, { accountId, mode: null, action: 'sender_pool.updated', target: { type: 'sender_pool', id }, details: JSON.parse(JSON.stringify({ ...patch, updated_at: undefined, sender_ids: memberIds })), at: patch.updated_at });
      return this.view(tx, { ...current, ...patch });
    });
    configChanged(this.storage);
    return view;
  }

  async remove(accountId: string, id: string, by?: Principal | AuditContext): Promise<{ id: string; deleted: true }> {
    await this.row(accountId, id);
    await transaction(this.storage.db, async (tx) => {
      await tx.deleteFrom('sender_pool_sticky').where('pool_id', '=', id).execute();
      await tx.deleteFrom('sender_pool_members').where('pool_id', '=', id).execute();
      await tx.deleteFrom('sender_pools').where('id', '=', id).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'sender_pool.deleted', target: { type: 'sender_pool', id }, at: this.clock.now() });
    });
    configChanged(this.storage);
    return { id, deleted: true };
  }
}
