// Logs: pino, with redaction of everything that must never reach a log line (bodies, tokens,
// secrets, credentials). Phone numbers are logged only through maskPhone().
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  '*.body',
  '*.secret',
  '*.password',
  '*.client_secret',
  '*.access_token',
  '*.token',
  '*.config.password',
  '*.config.auth_token',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'switchboard' } }, destination);
}

export function maskPhone(e164: string): string {
  return e164.length > 6 ? `${e164.slice(0, e164.length - 6)}****${e164.slice(-2)}` : '****';
}
