// Connectors, senders and routes declared in the SWITCHBOARD_CONFIG file, applied on start.
//
// The file describes installation-wide connectors and routes (those an account's API key cannot
// change) and senders of an account. Each start brings the database in line with it, by name:
// a connector or route of that name is created or replaced, a sender of that address created or
// updated. It never deletes what the file no longer names (a route may carry traffic; removing
// it is an API call). Credentials go through the same path as the API: split from the config
// and sealed with SWITCHBOARD_ENCRYPTION_KEY. A declaration the API would refuse stops the start
// with one line naming the entry.
import type { Config } from '../config.ts';
import { ConfigError } from '../config.ts';
import { AppError } from '../errors.ts';
import type { RouteService } from '../routing/route-service.ts';
import type { SenderService } from '../senders/sender-service.ts';
import type { Storage } from '../storage/database.ts';
import type { ConnectorService } from './connector-service.ts';

export interface DeclaredServices {
  storage: Storage;
  connectorAdmin: ConnectorService;
  routeAdmin: RouteService;
  senderAdmin: SenderService;
}

async function entry<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const field = (err.details as { field?: string } | undefined)?.field;
    throw new ConfigError(`SWITCHBOARD_CONFIG: ${what}${field ? ` (${field})` : ''}: ${err.message}`);
  }
}

export async function applyDeclaredConfig(s: DeclaredServices, config: Config, defaultAccountId: string | undefined): Promise<{ connectors: number; senders: number; routes: number }> {
  const connectorId = async (name: string, what: string): Promise<string> => {
    const row = await s.storage.db.selectFrom('connectors').select('id').where('account_id', 'is', null).where('name', '=', name).executeTakeFirst();
    if (!row) throw new ConfigError(`SWITCHBOARD_CONFIG: ${what}: no installation-wide connector named ${JSON.stringify(name)}.`);
    return row.id;
  };

  const connectors = config.connectors ?? [];
  for (const [i, c] of connectors.entries()) await entry(`connectors[${i}] ${JSON.stringify(c.name)}`, () => s.connectorAdmin.upsertGlobal(c));

  const senders = config.senders ?? [];
  for (const [i, d] of senders.entries()) {
    const what = `senders[${i}] ${JSON.stringify(d.address)}`;
    const account = d.account ?? defaultAccountId;
    if (!account) throw new ConfigError(`SWITCHBOARD_CONFIG: ${what}: no account given and no default account yet.`);
    const exists = await s.storage.db.selectFrom('accounts').select('id').where('id', '=', account).executeTakeFirst();
    if (!exists) throw new ConfigError(`SWITCHBOARD_CONFIG: ${what}: no account ${account}.`);
    const { connector, account: _account, ...rest } = d;
    const input = { ...rest, ...(connector ? { connector_id: await connectorId(connector, what) } : {}) };
    await entry(what, () => s.senderAdmin.upsert(account, input));
  }

  const routes = config.routes ?? [];
  for (const [i, r] of routes.entries()) {
    const what = `routes[${i}] ${JSON.stringify(r.name)}`;
    const { connector, strategy, ...rest } = r;
    const input: Record<string, unknown> = { ...rest };
    if (connector) input.connector_id = await connectorId(connector, what);
    if (strategy) input.strategy = { type: strategy.type, connector_ids: await Promise.all(strategy.connectors.map((n) => connectorId(n, what))) };
    await entry(what, () => s.routeAdmin.upsertGlobal(input));
  }
  return { connectors: connectors.length, senders: senders.length, routes: routes.length };
}
