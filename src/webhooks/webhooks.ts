// The webhooks capability's public surface: the service (API side) and the worker (sending),
// built from the platform's parts. platform.ts calls createWebhooks and nothing else here.
import type { Logger } from 'pino';
import type { Clock, Random } from '../clock.ts';
import type { Config } from '../config.ts';
import { newId } from '../ids.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Storage } from '../storage/database.ts';
import { InboundRouteService } from './inbound-routing.ts';
import { parseSchedule } from './schedule.ts';
import { WebhookService } from './webhook-service.ts';
import { WebhookWorker, type WebhookWorkerOptions } from './webhook-worker.ts';

export interface Webhooks {
  service: WebhookService;
  worker: WebhookWorker;
  inboundRoutes: InboundRouteService;
}

export function createWebhooks(deps: {
  storage: Storage;
  clock: Clock;
  random: Random;
  metrics: Metrics;
  log: Logger;
  config: Config;
  worker?: Partial<WebhookWorkerOptions>;
}): Webhooks {
  const { config } = deps;
  const service = new WebhookService(deps.storage, deps.clock, config.SWITCHBOARD_ALLOW_PRIVATE_URLS);
  const worker = new WebhookWorker(deps.storage, deps.clock, deps.random, service, deps.metrics, deps.log, {
    workerId: newId('whworker'),
    schedule: parseSchedule(config.SWITCHBOARD_WEBHOOK_SCHEDULE, config.SWITCHBOARD_WEBHOOK_RETRY_WINDOW),
    timeoutMs: config.SWITCHBOARD_WEBHOOK_TIMEOUT_MS,
    allowPrivateUrls: config.SWITCHBOARD_ALLOW_PRIVATE_URLS,
    pollMs: config.SWITCHBOARD_POLL_MS,
    ...deps.worker,
  });
  return { service, worker, inboundRoutes: new InboundRouteService(deps.storage, deps.clock) };
}
