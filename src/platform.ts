// Wires the services together. `createPlatform` opens and migrates the database and builds every
// service; `startWorkers` starts the background parts (dispatcher, connectors, sweepers). The HTTP
// app (http/app.ts) and the CLI both sit on top of a Platform.
import { resolve } from 'node:path';
import type { Resolver } from './net/guarded-fetch.ts';
import type { Logger } from 'pino';
import { AccountService } from './accounts/account-service.ts';
import { AudienceService } from './audiences/audience-service.ts';
import { CredentialService } from './auth/credential-service.ts';
import { LinkService } from './campaigns/campaign-links.ts';
import { CampaignRunner } from './campaigns/campaign-runner.ts';
import { CampaignService } from './campaigns/campaign-service.ts';
import { systemClock, type Clock, type Random } from './clock.ts';
import type { Config } from './config.ts';
import { ConnectorLeases } from './connectors/connector-leases.ts';
import { ConnectorManager } from './connectors/connector-manager.ts';
import { ConnectorService } from './connectors/connector-service.ts';
import { applyDeclaredConfig } from './connectors/declared-config.ts';
import type { ConnectorSink } from './connectors/connector.ts';
import { ConsentService } from './consent/consent-service.ts';
import { ContactImporter } from './contacts/contact-import.ts';
import { ContactService } from './contacts/contact-service.ts';
import { Dispatcher } from './dispatch/dispatcher.ts';
import { ReceiptService } from './dispatch/receipt-service.ts';
import { Throttle } from './dispatch/throttle.ts';
import { WorkSignal } from './dispatch/work-signal.ts';
import { InboxService } from './inbox/inbox-service.ts';
import { newId } from './ids.ts';
import { createLogger } from './logger.ts';
import { Backpressure } from './messages/backpressure.ts';
import { MessageService, IDEMPOTENCY_TTL_MS } from './messages/message-service.ts';
import { MediaService } from './media/media-service.ts';
import { TextToSpeech } from './media/text-to-speech.ts';
import { speechCheck } from './media/speech-check.ts';
import { StatusMachine } from './messages/status-machine.ts';
import { Metrics } from './metrics/metrics.ts';
import { ReviewService } from './review/review-service.ts';
import { Router } from './routing/router.ts';
import { RouteService } from './routing/route-service.ts';
import { loadKeyring, type Keyring } from './security/crypto.ts';
import { SealingPlugin } from './security/sealing-plugin.ts';
import { KeyRotation } from './security/key-rotation.ts';
import { RetentionSweeper } from './security/retention.ts';
import { SenderPoolService } from './senders/sender-pool-service.ts';
import { SenderPools } from './senders/sender-pools.ts';
import { SenderService } from './senders/sender-service.ts';
import { openStorage, parseDatabaseUrl, type Storage } from './storage/database.ts';
import { TemplateService } from './templates/template-service.ts';
import { migrate } from './storage/migrator.ts';
import { createTwilioCompat, type TwilioCompat } from './twilio-compat/twilio-compat.ts';
import { createWebhooks, type Webhooks } from './webhooks/webhooks.ts';
import { AuditService } from './audit/audit-service.ts';
import { SessionService } from './users/session-service.ts';
import { UserService } from './users/user-service.ts';
import { createWorkflows, type Workflows } from './workflows/workflows.ts';

export interface PlatformOptions {
  clock?: Clock;
  random?: Random;
  logger?: Logger;
  /** Process metrics (event loop, memory); off in tests that build many platforms. */
  processMetrics?: boolean;
  /**
   * What this process runs (`switchboard start --role`). `api` never opens a stateful connector
   * session (an SMPP bind) and never starts workers; `worker` and `all` start them with
   * startWorkers(). Default `all`.
   */
  role?: PlatformRole;
  /** How the names of user-given URLs resolve for outbound calls (net/guarded-fetch.ts); tests inject one. */
  resolver?: Resolver;
}

export type PlatformRole = 'all' | 'api' | 'worker';

export interface Platform {
  config: Config;
  clock: Clock;
  log: Logger;
  storage: Storage;
  metrics: Metrics;
  accounts: AccountService;
  credentials: CredentialService;
  consent: ConsentService;
  contacts: ContactService;
  contactImports: ContactImporter;
  inbox: InboxService;
  review: ReviewService;
  router: Router;
  statuses: StatusMachine;
  messages: MessageService;
  connectors: ConnectorManager;
  throttle: Throttle;
  connectorAdmin: ConnectorService;
  routeAdmin: RouteService;
  senderAdmin: SenderService;
  senderPoolAdmin: SenderPoolService;
  /** The encryption keys (security/crypto.ts); `sealing` applies them to the sealed columns. */
  sealer: Keyring;
  sealing: SealingPlugin;
  /** Re-sealing under the primary key in the background (`switchboard keys rotate-encryption`). */
  keyRotation: KeyRotation;
  /** Removes bodies past each account's retention (security/retention.ts). */
  retention: RetentionSweeper;
  receipts: ReceiptService;
  dispatcher: Dispatcher;
  webhooks: Webhooks;
  /** People (src/users), their dashboard sessions, and the audit log (src/audit). */
  users: UserService;
  sessions: SessionService;
  audit: AuditService;
  /** Connectors, senders and routes of the SWITCHBOARD_CONFIG file, created or updated by name (`start` runs it). */
  applyConfigFile(): Promise<{ connectors: number; senders: number; routes: number }>;
  templates: TemplateService;
  audiences: AudienceService;
  links: LinkService;
  campaigns: CampaignService;
  campaignRunner: CampaignRunner;
  /** Workflows (src/workflows): definitions, events, runs, and the engine worker. */
  workflows: Workflows;
  backpressure: Backpressure;
  /** The Twilio-compatible API (/2010-04-01): credentials, messages, incoming numbers. */
  twilio: TwilioCompat;
  /** Uploaded and rendered media (src/media), and text to speech. */
  media: MediaService;
  speech: TextToSpeech;
  connectorLeases: ConnectorLeases;
  /** PostgreSQL: NOTIFY/LISTEN between processes; null on SQLite. */
  workSignal: WorkSignal | null;
  role: PlatformRole;
  startWorkers(): Promise<void>;
  /** Runs every due piece of work once, waiting for it to finish (tests with a manual clock). */
  runDue(): Promise<number>;
  close(): Promise<void>;
}

export async function createPlatform(config: Config, opts: PlatformOptions = {}): Promise<Platform> {
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const log = opts.logger ?? createLogger(config.LOG_LEVEL);
  const role = opts.role ?? 'all';
  const target = parseDatabaseUrl(config.DATABASE_URL);
  const keyFileNear = target.dialect === 'sqlite' && target.target !== ':memory:' ? resolve(target.target) : null;
  const sealer = loadKeyring(config.SWITCHBOARD_ENCRYPTION_KEY, config.SWITCHBOARD_ENCRYPTION_KEYS_OLD, keyFileNear, (msg) => log.warn(msg));
  // Every handle on the database seals and opens the sealed columns (security/sealed-columns.ts).
  const sealing = new SealingPlugin(sealer, (msg, detail) => log.warn(detail, msg));
  const storage = await openStorage(config.DATABASE_URL, { sqliteSynchronous: config.SWITCHBOARD_SQLITE_SYNCHRONOUS, plugins: [sealing], onIdleConnectionError: (err) => log.warn({ err: err.message }, 'an idle database connection was closed by the server; the pool opens a new one') });
  await migrate(storage);
  const accounts = new AccountService(storage, clock);
  await accounts.ensureBuiltins();
  const metrics = new Metrics(async () => {
    const rows = await storage.db
      .selectFrom('messages')
      .select(['status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', 'in', ['scheduled', 'queued', 'sending'])
      .groupBy('status')
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }, opts.processMetrics ?? true);

  const statuses = new StatusMachine();
  statuses.onTransition((row) => {
    if (['sent', 'delivered', 'undelivered', 'failed', 'expired', 'canceled'].includes(row.status)) {
      metrics.transitions.inc({ status: row.status, class: row.error_class ?? '' });
    }
  });
  const consent = new ConsentService(storage, clock);
  const contacts = new ContactService(storage, clock);
  const contactImports = new ContactImporter(storage, clock, consent);
  const review = new ReviewService(storage, clock);
  const router = new Router(storage);
  const credentials = new CredentialService(storage, clock, config.SWITCHBOARD_OAUTH_TOKEN_TTL_S);
  const messages = new MessageService(
    storage,
    clock,
    { maxSegments: config.SWITCHBOARD_MAX_SEGMENTS, defaultValiditySeconds: config.SWITCHBOARD_DEFAULT_VALIDITY_S, allowPrivateUrls: config.SWITCHBOARD_ALLOW_PRIVATE_URLS },
    consent,
    router,
    statuses,
    new SenderPools(storage, clock),
  );
  const media = new MediaService(storage, clock, { maxBytes: config.SWITCHBOARD_MEDIA_MAX_BYTES, publicUrl: () => config.SWITCHBOARD_PUBLIC_URL });
  const speech = new TextToSpeech(
    { program: config.SWITCHBOARD_TTS_PROGRAM, converter: config.SWITCHBOARD_TTS_CONVERTER, voice: config.SWITCHBOARD_TTS_VOICE, timeoutMs: config.SWITCHBOARD_TTS_TIMEOUT_MS },
    media,
    () => config.SWITCHBOARD_PUBLIC_URL,
  );
  messages.checkSpeechWith(speechCheck(router, speech));
  const inbox = new InboxService(clock, consent, contacts, messages, log);
  const receipts = new ReceiptService(storage, clock, statuses, consent, review, log, inbox);
  const sink: ConnectorSink = {
    receipt: (connectorId, r) => receipts.receipt(connectorId, r),
    inbound: async (connectorId, m) => {
      const row = await receipts.inbound(connectorId, m);
      if (row) metrics.received.inc();
      dispatcher.wake(); // a keyword reply may be waiting
    },
  };
  const connectors = new ConnectorManager(storage, clock, {
    storage,
    clock,
    sink,
    simulator: { receiptDelayMs: config.SWITCHBOARD_SIMULATOR_RECEIPT_MS, slowSubmitMs: config.SWITCHBOARD_SIMULATOR_SLOW_MS, pollMs: Math.min(config.SWITCHBOARD_POLL_MS, 100) },
    publicUrl: config.SWITCHBOARD_PUBLIC_URL,
    speech,
  });
  const workerId = newId('worker');
  // One process per stateful session: an API process never binds; workers bind what they lease.
  if (role === 'api') connectors.setSessionPolicy('never');
  const throttle = new Throttle();
  const dispatcher = new Dispatcher(storage, clock, random, statuses, router, connectors, consent, review, receipts, metrics, throttle, {
    workerId,
    batchSize: 200,
    maxInFlight: 500,
    leaseMs: 15_000,
    submitTimeoutMs: 30_000,
    retryBaseMs: config.SWITCHBOARD_RETRY_BASE_MS,
    retryMaxMs: config.SWITCHBOARD_RETRY_MAX_MS,
    pollMs: config.SWITCHBOARD_POLL_MS,
    maxSegments: config.SWITCHBOARD_MAX_SEGMENTS,
  });
  const backpressure = new Backpressure(storage, { ceiling: config.SWITCHBOARD_MAX_ACCOUNT_BACKLOG, refreshMs: 500 });
  // Workers in other processes learn of new work by NOTIFY (PostgreSQL); this one in memory.
  const workSignal = storage.dialect.name === 'postgres' ? new WorkSignal(storage, config.DATABASE_URL, log) : null;
  messages.onAccepted((rows) => {
    for (const r of rows) metrics.accepted.inc({ channel: r.channel, mode: r.mode });
    backpressure.noteAccepted(rows);
    if (rows.some((r) => r.status === 'queued')) {
      dispatcher.wake();
      workSignal?.notify();
    }
  });

  const webhooks = createWebhooks({ storage, clock, random, metrics, log, config, worker: { resolver: opts.resolver } });
  statuses.onTransition(() => webhooks.worker.wake());
  const connectorLeases = new ConnectorLeases(storage, connectors, log, {
    owner: workerId,
    leaseMs: config.SWITCHBOARD_CONNECTOR_LEASE_MS,
    renewMs: Math.max(200, Math.floor(config.SWITCHBOARD_CONNECTOR_LEASE_MS / 3)),
  });
  // A connector leased here, or newly learnt to be stateless: messages for it are claimable now.
  connectors.onUsable = () => dispatcher.wake();

  const templates = new TemplateService(storage, clock);
  messages.resolveTemplatesWith((principal, input) => templates.resolveMessage(principal, input));
  const audiences = new AudienceService(storage, clock, contacts, consent);
  const links = new LinkService(storage, clock, config.SWITCHBOARD_PUBLIC_URL);
  const campaigns = new CampaignService(storage, clock, { defaultValiditySeconds: config.SWITCHBOARD_CAMPAIGN_VALIDITY_S }, templates, audiences, links, statuses);
  const campaignRunner = new CampaignRunner(storage, clock, campaigns, audiences, messages, links, log, {
    pollMs: Math.max(config.SWITCHBOARD_POLL_MS, 100),
    chunk: 1000,
    window: 2000,
    expandChunk: 2000,
  });
  campaigns.onWork(() => campaignRunner.wake());
  campaignRunner.onCompleted(() => webhooks.worker.wake());
  const senderAdmin = new SenderService(storage, clock, throttle);
  const twilio = createTwilioCompat({
    storage,
    clock,
    log,
    credentials,
    messages,
    templates,
    backpressure,
    senders: senderAdmin,
    webhookWorker: webhooks.worker,
    allowPrivateUrls: config.SWITCHBOARD_ALLOW_PRIVATE_URLS,
  });

  const workflows = createWorkflows({ storage, clock, log, messages, contacts, webhooks, workerId, pollMs: Math.max(config.SWITCHBOARD_POLL_MS, 250), allowPrivateUrls: config.SWITCHBOARD_ALLOW_PRIVATE_URLS, resolver: opts.resolver });
  const users = new UserService(storage, clock);
  const sessions = new SessionService(storage, clock, users, { idleS: config.SWITCHBOARD_SESSION_IDLE_S, maxS: config.SWITCHBOARD_SESSION_MAX_S });
  const audit = new AuditService(storage);

  const keyRotation = new KeyRotation(storage, clock, sealer, log, { workerId });
  const retention = new RetentionSweeper(storage, clock, log);

  let sweeper: NodeJS.Timeout | null = null;
  const sweep = async () => {
    const now = clock.now();
    await storage.db.deleteFrom('idempotency_keys').where('created_at', '<', now - IDEMPOTENCY_TTL_MS).execute();
    // Held receipts: applied ones are on their message's timeline; unmatched ones are kept a
    // week for inspection (a stray provider id, a part of a long message nobody tracks).
    await storage.db.deleteFrom('pending_receipts').where('received_at', '<', now - 7 * 86400_000).execute();
    await sessions.sweep();
  };

  const platform: Platform = {
    config,
    clock,
    log,
    storage,
    metrics,
    accounts,
    credentials,
    consent,
    contacts,
    contactImports,
    inbox,
    review,
    router,
    statuses,
    messages,
    connectors,
    throttle,
    connectorAdmin: new ConnectorService(storage, clock, connectors, router, throttle),
    routeAdmin: new RouteService(storage, clock, router),
    senderAdmin,
    senderPoolAdmin: new SenderPoolService(storage, clock),
    sealer,
    sealing,
    keyRotation,
    retention,
    receipts,
    dispatcher,
    webhooks,
    users,
    sessions,
    audit,
    async applyConfigFile() {
      return applyDeclaredConfig(platform, config, await accounts.defaultAccountId());
    },
    templates,
    audiences,
    links,
    campaigns,
    campaignRunner,
    workflows,
    backpressure,
    twilio,
    media,
    speech,
    connectorLeases,
    workSignal,
    role,
    async startWorkers() {
      if (role === 'api') throw new Error('an api-role platform runs no workers');
      await connectorLeases.start();
      await connectors.startAll();
      if (workSignal) {
        const wake = () => {
          dispatcher.wake();
          webhooks.worker.wake();
        };
        // While LISTEN is live, polling is only the fallback for a lost notification.
        await workSignal.listen(wake, (live) => {
          dispatcher.setPollMs(live ? Math.max(config.SWITCHBOARD_POLL_MS, config.SWITCHBOARD_LISTEN_POLL_MS) : config.SWITCHBOARD_POLL_MS);
          if (!live) dispatcher.wake();
        });
      }
      dispatcher.start();
      webhooks.worker.start();
      campaignRunner.start();
      workflows.engine.start();
      keyRotation.start();
      retention.start();
      sweeper = setInterval(() => sweep().catch((err) => log.warn({ err }, 'sweep failed')), 10 * 60_000);
      sweeper.unref();
    },
    async runDue() {
      let total = 0;
      for (let i = 0; i < 50; i++) {
        let n = await dispatcher.runOnce({ wait: true });
        for (const c of connectors.running()) {
          const runner = (c as { runDue?: () => Promise<number> }).runDue;
          if (runner) n += await runner.call(c);
        }
        n += await webhooks.worker.runOnce({ wait: true });
        n += await campaignRunner.runOnce();
        n += await workflows.engine.runOnce();
        n += await keyRotation.runOnce();
        n += await retention.runOnce();
        total += n;
        if (n === 0) break;
      }
      return total;
    },
    async close() {
      if (sweeper) clearInterval(sweeper);
      await campaignRunner.stop();
      await workflows.engine.stop();
      await keyRotation.stop();
      await retention.stop();
      await workSignal?.close();
      await dispatcher.stop();
      await webhooks.worker.stop();
      await connectorLeases.stop();
      await connectors.stopAll();
      await storage.close();
    },
  };
  return platform;
}
