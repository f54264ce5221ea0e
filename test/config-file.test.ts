// Connectors, senders and routes declared in the SWITCHBOARD_CONFIG file: applied on start,
// created or updated by name (so a second start changes nothing and a changed file updates in
// place), credentials sealed as through the API, and a bad declaration stopped with one line.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { createPlatform, type Platform } from '../src/platform.ts';
import { TEST_DEFAULTS, freshDatabase, sim } from './helpers.ts';

describe('connectors, senders and routes from the config file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-config-'));
  let database: { url: string; drop: () => Promise<void> };
  let accountId: string;
  before(async () => {
    database = await freshDatabase(dir);
  });
  after(async () => {
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const file = (sections: Record<string, unknown>) => {
    const path = join(dir, 'switchboard.json');
    writeFileSync(path, JSON.stringify({ LOG_LEVEL: 'silent', ...sections }));
    return loadConfig({ SWITCHBOARD_CONFIG: path }, { ...TEST_DEFAULTS, DATABASE_URL: database.url });
  };
  /** One start: open the platform, make sure the default account exists, apply the file. */
  const start = async (sections: Record<string, unknown>): Promise<Platform> => {
    const p = await createPlatform(file(sections), { logger: createLogger('silent'), processMetrics: false });
    accountId = (await p.accounts.ensureDefaultAccount('Config test')).id;
    try {
      await p.applyConfigFile();
    } catch (err) {
      await p.close();
      throw err;
    }
    return p;
  };
  const declared = (password: string, priority: number) => ({
    connectors: [
      { name: 'Primary SMSC', type: 'smpp', config: { host: '127.0.0.1', port: 2775, system_id: 'acme', password, window: 20 } },
      { name: 'Backup SMSC', type: 'smpp', config: { host: '127.0.0.1', port: 2776, system_id: 'acme', password } },
    ],
    senders: [{ address: '+1 415 555 0123', connector: 'Primary SMSC', capabilities: ['sms'], throughput: 10 }],
    routes: [
      { name: 'US via SMSC', priority, filters: { country: 'US', channel: 'sms' }, strategy: { type: 'failover', connectors: ['Primary SMSC', 'Backup SMSC'] } },
      { name: 'Alphanumeric via backup', priority: 60, filters: { sender: 'ACME' }, connector: 'Backup SMSC' },
    ],
  });

  test('a first start creates them, sealed; a second start with the same file changes nothing', async () => {
    let p = await start(declared('first123', 50));
    const snapshot = async (q: Platform) => ({
      // As stored: below the storage layer's sealing.
      connectors: await q.storage.db.withoutPlugins().selectFrom('connectors').selectAll().where('account_id', 'is', null).orderBy('name').execute(),
      routes: await q.storage.db.selectFrom('routes').selectAll().where('account_id', 'is', null).orderBy('priority').execute(),
      senders: await q.storage.db.selectFrom('senders').selectAll().where('account_id', '=', accountId).orderBy('address').execute(),
    });
    const first = await snapshot(p);
    const smsc = first.connectors.filter((c) => c.type === 'smpp');
    assert.deepEqual(smsc.map((c) => c.name), ['Backup SMSC', 'Primary SMSC']);
    assert.ok(smsc.every((c) => !c.config.includes('first123') && c.secrets && !c.secrets.includes('first123')), 'the password is sealed');
    assert.equal((await p.connectors.row(smsc[1].id))!.config.password, 'first123');
    const views = await p.connectorAdmin.list(accountId);
    assert.deepEqual(views.find((v) => v.name === 'Primary SMSC')!.secrets_set, ['password']);
    assert.equal(views.find((v) => v.name === 'Primary SMSC')!.global, true);
    const route = first.routes.find((r) => r.name === 'US via SMSC')!;
    assert.deepEqual(JSON.parse(route.strategy!), { type: 'failover', connector_ids: [smsc[1].id, smsc[0].id] });
    assert.deepEqual(JSON.parse(first.routes.find((r) => r.name === 'Alphanumeric via backup')!.filters), { sender: ['ACME'] });
    const sender = first.senders.find((s) => s.address === '+14155550123')!;
    assert.equal(sender.connector_id, smsc[1].id);
    assert.equal(sender.throughput, 10);
    // Live traffic to the US now routes to the declared SMSC first.
    assert.deepEqual(await p.router.candidates({ accountId, mode: 'live', channel: 'sms', to: sim(1), purpose: 'transactional' }), [smsc[1].id, smsc[0].id, 'conn_simulator']);
    await p.close();

    p = await start(declared('first123', 50));
    const second = await snapshot(p);
    assert.deepEqual(second, first, 'an unchanged file changes nothing, not even updated_at');
    await p.close();
  });

  test('a changed file updates in place, by name', async () => {
    const p = await start({ ...declared('rotated4', 40), senders: [{ address: '+14155550123', connector: 'Backup SMSC', capabilities: ['sms', 'mms'] }] });
    const connectors = await p.storage.db.selectFrom('connectors').selectAll().where('type', '=', 'smpp').execute();
    assert.equal(connectors.length, 2);
    const primary = connectors.find((c) => c.name === 'Primary SMSC')!;
    assert.equal((await p.connectors.row(primary.id))!.config.password, 'rotated4');
    const routes = await p.storage.db.selectFrom('routes').selectAll().where('account_id', 'is', null).execute();
    assert.equal(routes.length, 3, 'the two declared routes and the built-in one');
    assert.equal(routes.find((r) => r.name === 'US via SMSC')!.priority, 40);
    const sender = await p.storage.db.selectFrom('senders').selectAll().where('address', '=', '+14155550123').executeTakeFirstOrThrow();
    assert.equal(sender.connector_id, connectors.find((c) => c.name === 'Backup SMSC')!.id);
    assert.deepEqual(JSON.parse(sender.capabilities), ['sms', 'mms']);
    assert.equal(sender.throughput, null);
    // Installation-wide: an account cannot change them through the API.
    await assert.rejects(p.connectorAdmin.update(accountId, primary.id, { enabled: false }), (e: { code?: string }) => e.code === 'FORBIDDEN');
    await p.close();
  });

  test('a bad file or declaration stops the start with one line naming the entry', async () => {
    assert.throws(() => file({ connectors: [{ type: 'smpp' }] }), (e: Error) => e instanceof ConfigError && /connectors\.0\.name/.test(e.message));
    const refusals: Array<[Record<string, unknown>, RegExp]> = [
      [{ connectors: [{ name: 'Pigeon', type: 'carrier-pigeon' }] }, /connectors\[0\] "Pigeon" \(type\): type must be one of/],
      [{ connectors: [{ name: 'Broken', type: 'smpp', config: { host: '127.0.0.1' } }] }, /connectors\[0\] "Broken" \(config\): The smpp config is not usable/],
      [{ routes: [{ name: 'Nowhere', priority: 1, connector: 'No such SMSC' }] }, /routes\[0\] "Nowhere": no installation-wide connector named "No such SMSC"/],
      [{ routes: [{ name: 'Bad filter', priority: 1, connector: 'Primary SMSC', filters: { planet: 'mars' } }] }, /routes\[0\] "Bad filter" \(filters\.planet\)/],
      [{ senders: [{ address: '12', connector: 'Primary SMSC' }] }, /senders\[0\] "12" \(address\)/],
      [{ connectors: [{ name: 'Primary SMSC', type: 'twilio', config: {} }] }, /already a smpp connector/],
    ];
    for (const [sections, message] of refusals) {
      await assert.rejects(start(sections), (e: Error) => e instanceof ConfigError && message.test(e.message) && !e.message.includes('\n'), `refused: ${JSON.stringify(sections)}`);
    }
  });
});
