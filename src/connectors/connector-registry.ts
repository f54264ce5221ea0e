// Connector types, one line each. A new provider is a folder under connectors/ and a line here.
import type { ConnectorFactory } from './connector.ts';
import { SimulatorConnector } from './simulator/simulator-connector.ts';
import { SmppConnector } from './smpp/smpp-connector.ts';

export const CONNECTOR_TYPES: Record<string, ConnectorFactory> = {
  simulator: (row, deps) => new SimulatorConnector(row, deps),
  smpp: (row, deps) => new SmppConnector(row, deps),
};
