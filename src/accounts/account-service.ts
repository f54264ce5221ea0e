// Accounts (tenants) and the first-start bootstrap: the built-in simulator connector, the
// catch-all route to it, and the default account with its first admin key.
import type { Clock } from '../clock.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Storage } from '../storage/database.ts';
import { getSetting, setSetting } from '../storage/settings.ts';
import { transaction } from '../storage/transactions.ts';

export const BUILTIN_SIMULATOR_ID = 'conn_simulator';
export const DEFAULT_ROUTE_ID = 'route_default';

export interface AccountView {
  id: string;
  name: string;
  created_at: string;
  default_sender: string | null;
}

// Area codes for the senders given to new accounts: real NANP area codes with the fictional
// 555-01YY exchange, so they are valid numbers that belong to nobody.
const SENDER_AREAS = ['202', '212', '213', '305', '312', '415', '503', '617', '702', '713', '801', '206', '404', '512', '615', '720'];

export class AccountService {
  constructor(
    private storage: Storage,
    private clock: Clock,
  ) {}

  async ensureBuiltins(): Promise<void> {
    const db = this.storage.db;
    const now = this.clock.now();
    await db
      .insertInto('connectors')
      .values({ id: BUILTIN_SIMULATOR_ID, account_id: null, name: 'Carrier simulator', type: 'simulator', config: '{}', enabled: 1, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await db
      .insertInto('routes')
      .values({ id: DEFAULT_ROUTE_ID, account_id: null, priority: 1000, filters: '{}', connector_id: BUILTIN_SIMULATOR_ID, strategy: null, created_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  }

  async create(name: string): Promise<AccountView> {
    if (typeof name !== 'string' || name.trim() === '' || name.length > 200) throw validation('name', 'name must be 1 to 200 characters.');
    const now = this.clock.now();
    const id = newId('acct', now);
    const address = await this.pickSenderAddress();
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('accounts').values({ id, name: name.trim(), settings: '{}', created_at: now }).execute();
      await tx
        .insertInto('senders')
        .values({
          id: newId('sender', now),
          account_id: id,
          address,
          type: 'long_code',
          connector_id: BUILTIN_SIMULATOR_ID,
          capabilities: JSON.stringify(['sms', 'mms', 'voice', 'rvm']),
          throughput: null,
          is_default: 1,
          created_at: now,
        })
        .execute();
    });
    return { id, name: name.trim(), created_at: new Date(now).toISOString(), default_sender: address };
  }

  private async pickSenderAddress(): Promise<string> {
    for (let i = 0; i < 200; i++) {
      const area = SENDER_AREAS[Math.floor(Math.random() * SENDER_AREAS.length)];
      const yy = String(Math.floor(Math.random() * 100)).padStart(2, '0');
      const address = `+1${area}55501${yy}`;
      const taken = await this.storage.db.selectFrom('senders').select('id').where('address', '=', address).executeTakeFirst();
      if (!taken) return address;
    }
    return `+1202555${String(Math.floor(Math.random() * 10000)).padStart(4, '0')}`;
  }

  async get(id: string): Promise<AccountView> {
    const row = await this.storage.db.selectFrom('accounts').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new AppError('NOT_FOUND', `No account ${id}.`, { id });
    const sender = await this.storage.db
      .selectFrom('senders')
      .select('address')
      .where('account_id', '=', id)
      .where('is_default', '=', 1)
      .executeTakeFirst();
    return { id: row.id, name: row.name, created_at: new Date(row.created_at).toISOString(), default_sender: sender?.address ?? null };
  }

  async defaultAccountId(): Promise<string | undefined> {
    return getSetting(this.storage.db, 'default_account_id');
  }

  /**
   * The account that the first start (or first CLI use) creates. Returns created=true only to
   * the one process that created it, so that only it prints the first credentials.
   */
  async ensureDefaultAccount(name: string): Promise<{ id: string; created: boolean }> {
    const existing = await this.defaultAccountId();
    if (existing) return { id: existing, created: false };
    const account = await this.create(name);
    await setSetting(this.storage.db, 'default_account_id', account.id);
    return { id: account.id, created: true };
  }
}
