// Connector types, one entry each. A new provider is a folder under connectors/ and an entry
// here: how to start a session, and how to check a config before it is stored.
import type { ConnectorFactory } from './connector.ts';
import { DropCowboyConnector, validateDropCowboyConfig } from './dropcowboy/dropcowboy-connector.ts';
import { PlivoConnector, validatePlivoConfig } from './plivo/plivo-connector.ts';
import { SimulatorConnector } from './simulator/simulator-connector.ts';
import { SmppConnector, validateSmppConfig } from './smpp/smpp-connector.ts';
import { TelnyxConnector, validateTelnyxConfig } from './telnyx/telnyx-connector.ts';
import { TwilioConnector, validateTwilioConfig } from './twilio/twilio-connector.ts';
import { VonageConnector, validateVonageConfig } from './vonage/vonage-connector.ts';

export interface ConnectorType {
  create: ConnectorFactory;
  /** Problems with a config (credentials included), in words; empty when it is usable. */
  validate?: (config: Record<string, unknown>) => string[];
  /** Takes provider callbacks on /hooks/{id}/… (HTTP providers); others are never started by one. */
  webhooks?: boolean;
  /**
   * The session is stateful and must be open in ONE process at a time (an SMPP bind: the SMSC
   * counts binds, and receipts come back on the bind that submitted). With several worker
   * processes, the one holding the connector's lease (connector-leases.ts) opens it and alone
   * submits through it. Stateless types (HTTP providers, the simulator, whose state is in the
   * database) run in every worker.
   */
  exclusive?: boolean;
}

export const CONNECTOR_TYPES: Record<string, ConnectorType> = {
  simulator: { create: (row, deps) => new SimulatorConnector(row, deps) },
  smpp: { create: (row, deps) => new SmppConnector(row, deps), validate: validateSmppConfig, exclusive: true },
  twilio: { create: (row, deps) => new TwilioConnector(row, deps), validate: validateTwilioConfig, webhooks: true },
  telnyx: { create: (row, deps) => new TelnyxConnector(row, deps), validate: validateTelnyxConfig, webhooks: true },
  vonage: { create: (row, deps) => new VonageConnector(row, deps), validate: validateVonageConfig, webhooks: true },
  plivo: { create: (row, deps) => new PlivoConnector(row, deps), validate: validatePlivoConfig, webhooks: true },
  dropcowboy: { create: (row, deps) => new DropCowboyConnector(row, deps), validate: validateDropCowboyConfig, webhooks: true },
};
