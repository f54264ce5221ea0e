// Renders every error as CONTRACT §3's body, including Fastify's own (bad JSON, body too
// large, unknown route, schema validation). Unexpected errors become UNKNOWN_ERROR without a
// stack trace; the log keeps the detail under the request id.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERROR_CODES, type ErrorCode } from '../errors.ts';

export function errorBody(req: FastifyRequest, code: ErrorCode | string, message: string, details: Record<string, unknown> = {}) {
  const known = (ERROR_CODES as Record<string, { retryable: boolean }>)[code];
  return { error: { code, message, retryable: known?.retryable ?? false, request_id: String(req.id), details } };
}

export function sendError(reply: FastifyReply, err: AppError) {
  for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
  return reply.status(err.status).send(errorBody(reply.request, err.code, err.message, err.details));
}

function fromValidation(err: FastifyError): AppError {
  const first = err.validation?.[0];
  const params = (first?.params ?? {}) as Record<string, unknown>;
  let field = (first?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  if (params.missingProperty) field = field ? `${field}.${params.missingProperty}` : String(params.missingProperty);
  if (params.additionalProperty) field = field ? `${field}.${params.additionalProperty}` : String(params.additionalProperty);
  const where = err.validationContext ?? 'body';
  const label = field || where;
  return new AppError('VALIDATION_ERROR', `${label} ${first?.message ?? 'is invalid'}.`, { field: label, in: where });
}

export function translateError(err: FastifyError | AppError | Error): AppError {
  if (err instanceof AppError) return err;
  const fe = err as FastifyError;
  if (fe.validation) return fromValidation(fe);
  switch (fe.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError('PAYLOAD_TOO_LARGE', 'The request body is larger than the server accepts.', {});
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new AppError('VALIDATION_ERROR', 'The request body is not valid JSON.', { field: 'body' });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new AppError('VALIDATION_ERROR', 'The request body is empty; send a JSON object.', { field: 'body' });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('VALIDATION_ERROR', 'Unsupported Content-Type; send application/json.', { field: 'content-type' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('VALIDATION_ERROR', 'Content-Length does not match the body.', { field: 'content-length' });
  }
  // PostgreSQL's data exceptions (class 22: a number out of range, text it cannot hold) come from
  // a value in the request that passed validation but not the column: the request's fault, and
  // its transaction was rolled back whole.
  if (typeof fe.code === 'string' && /^22[0-9A-Z]{3}$/.test(fe.code) && (err as { severity?: string }).severity !== undefined) {
    return new AppError('VALIDATION_ERROR', 'A value in the request is out of the range this server stores.', { reason: 'out_of_range' });
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) return new AppError('VALIDATION_ERROR', 'The request body is not valid JSON.', { field: 'body' });
  if (fe.statusCode === 413) return new AppError('PAYLOAD_TOO_LARGE', 'The request body is larger than the server accepts.', {});
  if (fe.statusCode === 429) return new AppError('RATE_LIMITED', 'Too many requests.', {});
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return new AppError('VALIDATION_ERROR', fe.message, {});
  return new AppError('UNKNOWN_ERROR', 'Something went wrong on our side. The request id identifies it in the logs.', {});
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, req, reply) => {
    const appErr = translateError(err as FastifyError);
    if (appErr.code === 'UNKNOWN_ERROR') req.log.error({ err }, 'unhandled error');
    return sendError(reply, appErr);
  });
  app.setNotFoundHandler((req, reply) => {
    return sendError(reply, new AppError('NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}.`, { method: req.method }));
  });
}

/**
 * Errors the router raises before any hook runs (a path parameter longer than maxParamLength, a
 * URL that does not decode): the same CONTRACT §3 body as every other error.
 */
export function frameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply) {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, new AppError('NOT_FOUND', 'No such object: the id in the path is longer than any id this API makes.', {}));
  return sendError(reply, new AppError('VALIDATION_ERROR', 'The URL cannot be decoded.', { field: 'url' }));
}
