// The one registry of error codes (CONTRACT §3). Every error answer anywhere in the API is an
// AppError rendered by the HTTP layer as
// {"error": {"code", "message", "retryable", "request_id", "details"}}.
// docs/errors.md documents each code; keep the two in step.

export const ERROR_CODES = {
  AUTH_FAILED: { status: 401, retryable: false },
  FORBIDDEN: { status: 403, retryable: false },
  VALIDATION_ERROR: { status: 400, retryable: false },
  INVALID_NUMBER: { status: 422, retryable: false },
  OPTED_OUT: { status: 422, retryable: false },
  CONSENT_REQUIRED: { status: 422, retryable: false },
  FILTERED: { status: 422, retryable: false },
  NOT_FOUND: { status: 404, retryable: false },
  IDEMPOTENCY_CONFLICT: { status: 409, retryable: false },
  PAYLOAD_TOO_LARGE: { status: 413, retryable: false },
  RATE_LIMITED: { status: 429, retryable: true },
  UNKNOWN_ERROR: { status: 500, retryable: true },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class AppError extends Error {
  readonly status: number;
  readonly retryable: boolean;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'AppError';
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
  }
}

export const validation = (field: string, message: string, extra: Record<string, unknown> = {}) =>
  new AppError('VALIDATION_ERROR', message, { field, ...extra });

export const notFound = (what: string, id: string) =>
  new AppError('NOT_FOUND', `No ${what} ${id} in this account.`, { id });

/**
 * The error classes a message can carry after acceptance (CONTRACT §5). Connectors map every
 * provider code onto one of these; the dispatcher's policy is keyed by them.
 */
export const ERROR_CLASSES = [
  'AUTH_FAILED',
  'INVALID_NUMBER',
  'RATE_LIMITED',
  'OPTED_OUT',
  'FILTERED',
  'UNREACHABLE',
  'UNKNOWN_ERROR',
] as const;
export type ErrorClass = (typeof ERROR_CLASSES)[number];
