// The `smpp` package (0.5.x) ships no types and none exist on npm: this declares only what
// Switchboard uses (sessions, PDUs, the server side for the test SMSC). It is CommonJS, so it is
// imported as a default export.
declare module 'smpp' {
  import type { EventEmitter } from 'node:events';
  import type { Server as NetServer, Socket } from 'node:net';

  /** A PDU: header fields, then its mandatory parameters and TLVs as plain properties. */
  export interface PDU {
    command: string;
    command_id: number;
    command_status: number;
    sequence_number: number;
    isResponse(): boolean;
    response(options?: Record<string, unknown>): PDU;
    toBuffer(): Buffer;
    [field: string]: any;
  }

  export interface Session extends EventEmitter {
    socket: Socket;
    /** Assigns the sequence number to a request PDU; false when the socket is not writable. */
    send(pdu: PDU, responseCallback?: (pdu: PDU) => void, sendCallback?: (pdu: PDU) => void): boolean;
    close(callback?: () => void): void;
    destroy(callback?: () => void): void;
    pause(): void;
    resume(): void;
    [command: string]: any;
  }

  export interface Server extends NetServer {
    sessions: Session[];
  }

  export interface ConnectOptions {
    host?: string;
    port?: number;
    tls?: boolean;
    url?: string;
    ca?: string | Buffer;
    rejectUnauthorized?: boolean;
    servername?: string;
    [option: string]: unknown;
  }

  interface Smpp {
    PDU: new (command: string, options?: Record<string, unknown>) => PDU;
    connect(options: ConnectOptions, listener?: () => void): Session;
    createServer(options: { key?: string | Buffer; cert?: string | Buffer }, listener?: (session: Session) => void): Server;
    errors: Record<string, number>;
  }

  const smpp: Smpp;
  export default smpp;
}
