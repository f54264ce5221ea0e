// What every HTTP provider connector shares: no session to open (a REST API is stateless), an
// in-flight count and the last transport or credentials error for GET /v1/connectors/{id}.
// A provider adds its type, its channels and `send`, plus `handleWebhook` for callbacks.
import type { Channel, Connector, ConnectorCapabilities, ConnectorDeps, ConnectorRow, ConnectorState, OutboundMessage, SubmitResult } from './connector.ts';

export abstract class HttpProviderConnector<C extends { max_in_flight?: number; webhook_base_url?: string }> implements Connector {
  abstract readonly type: string;
  readonly id: string;
  readonly capabilities: ConnectorCapabilities;
  protected config: C;
  private inFlight = 0;
  private lastError: string | null = null;
  private running = false;

  constructor(
    row: ConnectorRow,
    protected deps: ConnectorDeps,
    channels: Channel[],
  ) {
    this.id = row.id;
    this.config = row.config as unknown as C;
    this.capabilities = { channels, lookup: false, maxInFlight: this.config.max_in_flight ?? 10 };
  }

  async start(): Promise<void> {
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
  }

  state(): ConnectorState {
    return { status: this.running ? 'up' : 'stopped', in_flight: this.inFlight, last_error: this.lastError };
  }

  async submit(m: OutboundMessage): Promise<SubmitResult> {
    this.inFlight++;
    try {
      const r = await this.send(m);
      // Only what says the connector itself is unwell is its "last error"; a bad number is not.
      if (!r.ok && (r.errorClass === 'AUTH_FAILED' || r.errorClass === 'UNREACHABLE')) this.lastError = r.message;
      else if (r.ok) this.lastError = null;
      return r;
    } finally {
      this.inFlight--;
    }
  }

  /** Our public base URL as the provider sees it (config, else SWITCHBOARD_PUBLIC_URL, else `fallback`). */
  protected publicBase(fallback?: string): string | undefined {
    const b = this.config.webhook_base_url ?? this.deps.publicUrl ?? fallback;
    return b ? b.replace(/\/+$/, '') : undefined;
  }

  /** One POST to the provider's API, its answer mapped to accepted or an error class. */
  protected abstract send(m: OutboundMessage): Promise<SubmitResult>;
}
