// Connectors as the API sees them (CONTRACT §9): create, read (with live state), change,
// delete. Credentials are split from the config on the way in into the `secrets` column, which
// the storage layer seals with the encryption key (security/sealed-columns.ts),
// and never leave again: the API shows which secret fields are set, not their values.
import { CONFIG_FILE, recordBy, type AuditContext } from '../audit/audit-service.ts';
import type { Principal } from '../auth/scopes.ts';
import type { Clock } from '../clock.ts';
import { transaction } from '../storage/transactions.ts';
import { AppError, validation } from '../errors.ts';
import { newId } from '../ids.ts';
import type { Storage } from '../storage/database.ts';
import type { ConnectorsTable } from '../storage/schema.ts';
import type { Router } from '../routing/router.ts';
import type { Throttle } from '../dispatch/throttle.ts';
import { ConnectorManager } from './connector-manager.ts';
import { CONNECTOR_TYPES } from './connector-registry.ts';

/** Config fields that are credentials, whatever the connector type. */
export const SECRET_FIELDS = ['password', 'auth_token', 'api_key', 'api_secret', 'api_key_secret', 'private_key', 'signature_secret', 'webhook_secret', 'secret', 'token'];

export interface ConnectorView {
  id: string;
  object: 'connector';
  name: string;
  type: string;
  config: Record<string, unknown>;
  secrets_set: string[];
  enabled: boolean;
  global: boolean;
  created_at: string;
  updated_at: string;
  state?: Record<string, unknown>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function splitSecrets(config: Record<string, unknown>): { plain: Record<string, unknown>; secrets: Record<string, unknown> } {
  const plain: Record<string, unknown> = {};
  const secrets: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) (SECRET_FIELDS.includes(k) ? secrets : plain)[k] = v;
  return { plain, secrets };
}

export class ConnectorService {
  constructor(
    private storage: Storage,
    private clock: Clock,
    private manager: ConnectorManager,
    private router: Router,
    private throttle: Throttle,
  ) {}

  private view(row: ConnectorsTable, state?: Record<string, unknown>): ConnectorView {
    return {
      id: row.id,
      object: 'connector',
      name: row.name,
      type: row.type,
      config: JSON.parse(row.config),
      secrets_set: row.secrets ? Object.keys(JSON.parse(row.secrets)) : [],
      enabled: row.enabled === 1,
      global: row.account_id === null,
      created_at: new Date(row.created_at).toISOString(),
      updated_at: new Date(row.updated_at).toISOString(),
      ...(state ? { state } : {}),
    };
  }

  private validate(input: { name?: unknown; type?: unknown; config?: unknown; enabled?: unknown }, creating: boolean) {
    if (creating || input.name !== undefined) {
      if (typeof input.name !== 'string' || input.name.trim() === '' || input.name.length > 200) throw validation('name', 'name must be 1 to 200 characters.');
    }
    if (creating) {
      if (typeof input.type !== 'string' || !ConnectorManager.isKnownType(input.type)) {
        throw validation('type', `type must be one of: ${Object.keys(CONNECTOR_TYPES).join(', ')}.`, { allowed: Object.keys(CONNECTOR_TYPES) });
      }
    }
    if (input.config !== undefined && !isObject(input.config)) throw validation('config', 'config must be an object.');
    if (input.config !== undefined && JSON.stringify(input.config).length > 20_000) throw validation('config', 'config is larger than 20 KB.');
    if (input.enabled !== undefined && typeof input.enabled !== 'boolean') throw validation('enabled', 'enabled must be true or false.');
  }

  private checkConfig(type: string, config: Record<string, unknown>): void {
    const problems = CONNECTOR_TYPES[type]?.validate?.(config) ?? [];
    if (problems.length) throw validation('config', `The ${type} config is not usable: ${problems.join('; ')}.`, { problems });
  }

  /** `by`: who makes the change, for the audit log (a route's principal; none is the CLI). */
  async create(accountId: string, input: { name?: unknown; type?: unknown; config?: unknown; enabled?: unknown }, by?: Principal | AuditContext): Promise<ConnectorView> {
    this.validate(input, true);
    const now = this.clock.now();
    const { plain, secrets } = splitSecrets((input.config as Record<string, unknown>) ?? {});
    this.checkConfig(input.type as string, { ...plain, ...secrets });
    const row: ConnectorsTable = {
      id: newId('conn', now),
      account_id: accountId,
      name: (input.name as string).trim(),
      type: input.type as string,
      config: JSON.stringify(plain),
      secrets: Object.keys(secrets).length ? JSON.stringify(secrets) : null,
      enabled: input.enabled === false ? 0 : 1,
      created_at: now,
      updated_at: now,
    };
    await transaction(this.storage.db, async (tx) => {
      await tx.insertInto('connectors').values(row).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'connector.created', target: { type: 'connector', id: row.id }, details: { name: row.name, type: row.type, enabled: row.enabled === 1, secret_fields: Object.keys(secrets) }, at: now });
    });
    this.router.invalidate();
    this.throttle.invalidate();
    return this.view(row);
  }

  /**
   * An installation-wide connector declared in the config file, created or brought in line by
   * name: the file is the whole truth, so its config (credentials sealed) replaces the stored one.
   * Returns the connector's id.
   */
  async upsertGlobal(input: { name?: unknown; type?: unknown; config?: unknown; enabled?: unknown }): Promise<string> {
    this.validate(input, true);
    const name = (input.name as string).trim();
    const existing = await this.storage.db.selectFrom('connectors').selectAll().where('account_id', 'is', null).where('name', '=', name).executeTakeFirst();
    if (existing && existing.type !== input.type) throw validation('type', `Connector ${name} is already a ${existing.type} connector; give the new type another name.`, { name });
    const { plain, secrets } = splitSecrets((input.config as Record<string, unknown>) ?? {});
    this.checkConfig(input.type as string, { ...plain, ...secrets });
    const stored = existing?.secrets ?? null;
    const enabled = input.enabled === false ? 0 : 1;
    if (existing && existing.config === JSON.stringify(plain) && stored === (Object.keys(secrets).length ? JSON.stringify(secrets) : null) && existing.enabled === enabled) return existing.id;
    const now = this.clock.now();
    const secretsJson = Object.keys(secrets).length ? JSON.stringify(secrets) : null;
    const id = existing?.id ?? newId('conn', now);
    await transaction(this.storage.db, async (tx) => {
      if (existing) await tx.updateTable('connectors').set({ config: JSON.stringify(plain), secrets: secretsJson, enabled, updated_at: now }).where('id', '=', id).execute();
      else await tx.insertInto('connectors').values({ id, account_id: null, name, type: input.type as string, config: JSON.stringify(plain), secrets: secretsJson, enabled, created_at: now, updated_at: now }).execute();
      await recordBy(tx, CONFIG_FILE, { accountId: null, action: existing ? 'connector.updated' : 'connector.created', target: { type: 'connector', id }, details: { name, type: input.type, enabled: enabled === 1, secret_fields: Object.keys(secrets) }, at: now });
    });
    this.router.invalidate();
    this.throttle.invalidate();
    if (existing) await this.manager.reload(id);
    return id;
  }

  private async row(accountId: string, id: string, forWrite: boolean): Promise<ConnectorsTable> {
    const row = await this.storage.db.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row || (row.account_id !== null && row.account_id !== accountId)) throw new AppError('NOT_FOUND', `No connector ${id} in this account.`, { id });
    if (forWrite && row.account_id === null) throw new AppError('FORBIDDEN', 'Installation-wide connectors are changed in the configuration, not through an account.', { id });
    return row;
  }

  async list(accountId: string): Promise<ConnectorView[]> {
    const rows = await this.storage.db
      .selectFrom('connectors')
      .selectAll()
      .where((eb) => eb.or([eb('account_id', '=', accountId), eb('account_id', 'is', null)]))
      .orderBy('created_at')
      .execute();
    return rows.map((r) => this.view(r));
  }

  async get(accountId: string, id: string): Promise<ConnectorView> {
    const row = await this.row(accountId, id, false);
    const live = this.manager.running().find((c) => c.id === id);
    return this.view(row, { ...(live ? live.state() : { status: row.enabled ? 'not_started' : 'disabled', in_flight: 0, last_error: null }), circuit: this.manager.circuitState(id) });
  }

  async update(accountId: string, id: string, input: { name?: unknown; config?: unknown; enabled?: unknown }, by?: Principal | AuditContext): Promise<ConnectorView> {
    this.validate(input, false);
    const row = await this.row(accountId, id, true);
    const patch: Partial<ConnectorsTable> = { updated_at: this.clock.now() };
    if (input.name !== undefined) patch.name = (input.name as string).trim();
    if (input.enabled !== undefined) patch.enabled = input.enabled ? 1 : 0;
    if (input.config !== undefined) {
      // A PATCH merges: fields not named keep their values; a field set to null is removed.
      const { plain, secrets } = splitSecrets(input.config as Record<string, unknown>);
      const mergedPlain = { ...JSON.parse(row.config), ...plain };
      const mergedSecrets = { ...(row.secrets ? JSON.parse(row.secrets) : {}), ...secrets };
      for (const obj of [mergedPlain, mergedSecrets]) for (const k of Object.keys(obj)) if (obj[k] === null) delete obj[k];
      this.checkConfig(row.type, { ...mergedPlain, ...mergedSecrets });
      patch.config = JSON.stringify(mergedPlain);
      patch.secrets = Object.keys(mergedSecrets).length ? JSON.stringify(mergedSecrets) : null;
    }
    await transaction(this.storage.db, async (tx) => {
      await tx.updateTable('connectors').set(patch).where('id', '=', id).execute();
      // Which fields changed, never their values: config may hold credentials.
      const changed = { name: patch.name, enabled: patch.enabled === undefined ? undefined : patch.enabled === 1, config_fields: input.config ? Object.keys(input.config as object) : undefined };
      await recordBy(tx, by, { accountId, mode: null, action: 'connector.updated', target: { type: 'connector', id }, details: JSON.parse(JSON.stringify(changed)), at: patch.updated_at });
    });
    this.router.invalidate();
    this.throttle.invalidate();
    await this.manager.reload(id);
    return this.get(accountId, id);
  }

  async remove(accountId: string, id: string, by?: Principal | AuditContext): Promise<{ id: string; deleted: true }> {
    const before = await this.row(accountId, id, true);
    const routes = await this.storage.db.selectFrom('routes').select(['id', 'strategy', 'connector_id']).execute();
    const using = routes.filter((r) => r.connector_id === id || (r.strategy && (JSON.parse(r.strategy).connector_ids as string[]).includes(id))).map((r) => r.id);
    if (using.length) throw validation('id', 'Routes still use this connector: delete or change them first.', { routes: using });
    const senders = await this.storage.db.selectFrom('senders').select('id').where('connector_id', '=', id).execute();
    if (senders.length) throw validation('id', 'Senders still use this connector: change them first.', { senders: senders.map((s) => s.id) });
    await transaction(this.storage.db, async (tx) => {
      await tx.deleteFrom('connectors').where('id', '=', id).execute();
      await recordBy(tx, by, { accountId, mode: null, action: 'connector.deleted', target: { type: 'connector', id }, details: { name: before.name, type: before.type }, at: this.clock.now() });
    });
    this.router.invalidate();
    this.throttle.invalidate();
    await this.manager.reload(id);
    return { id, deleted: true };
  }
}
