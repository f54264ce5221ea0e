// Prometheus metrics. One registry per platform instance (tests run several in one process).
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();
  readonly accepted = new Counter({ name: 'switchboard_messages_accepted_total', help: 'Messages accepted by the API', labelNames: ['channel', 'mode'], registers: [this.registry] });
  readonly transitions = new Counter({
    name: 'switchboard_message_status_total',
    help: 'Messages reaching a status, by error class where there is one',
    labelNames: ['status', 'class'],
    registers: [this.registry],
  });
  readonly received = new Counter({ name: 'switchboard_messages_received_total', help: 'Inbound messages stored', registers: [this.registry] });
  readonly submitSeconds = new Histogram({
    name: 'switchboard_submit_duration_seconds',
    help: 'Time a connector took to answer a submit',
    labelNames: ['connector'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers: [this.registry],
  });
  readonly inDoubt = new Counter({ name: 'switchboard_in_doubt_attempts_total', help: 'Attempts found without an outcome after a worker died', labelNames: ['resolution'], registers: [this.registry] });
  readonly possibleDuplicates = new Counter({ name: 'switchboard_possible_duplicate_submits_total', help: 'Resubmits of in-doubt attempts to connectors that cannot be asked', registers: [this.registry] });
  readonly dispatcherErrors = new Counter({ name: 'switchboard_dispatcher_errors_total', help: 'Unexpected errors in the dispatcher loop', registers: [this.registry] });
  readonly queueDepth: Gauge;

  constructor(queueDepth: () => Promise<Record<string, number>>, withProcessMetrics = true) {
    this.queueDepth = new Gauge({
      name: 'switchboard_queue_depth',
      help: 'Outbound messages waiting, by status',
      labelNames: ['status'],
      registers: [this.registry],
      async collect() {
        const depth = await queueDepth();
        for (const status of ['scheduled', 'queued', 'sending']) this.set({ status }, depth[status] ?? 0);
      },
    });
    if (withProcessMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'switchboard_' });
  }
}
