// /v1/contacts (CONTRACT §8): create, read, change and list contacts; import a CSV sent as the
// text/csv request body or as a multipart file, streamed (never held whole in memory).
import multipart from '@fastify/multipart';
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { validation } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { IdParams, errorResponses } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { IMPORT_MAX_BYTES } from './contact-import.ts';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const FieldValue = Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()]);

export const ContactSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('contact'),
  phone: Type.String({ description: 'E.164' }),
  name: Nullable(Type.String()),
  time_zone: Nullable(Type.String({ description: 'IANA zone; when null, quiet hours use the zone of the number.' })),
  owner: Nullable(Type.String({ description: 'The user or team their replies route to, e.g. user_… or team:sales.' })),
  tags: Type.Array(Type.String()),
  custom_fields: Type.Record(Type.String(), FieldValue),
  created_at: Type.String({ format: 'date-time' }),
  updated_at: Type.String({ format: 'date-time' }),
});

const ContactInput = Type.Object({
  phone: Type.Optional(Type.String()),
  name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  time_zone: Type.Optional(Nullable(Type.String())),
  owner: Type.Optional(Nullable(Type.String({ maxLength: 100 }))),
  tags: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50 })),
  custom_fields: Type.Optional(Type.Record(Type.String(), FieldValue)),
});

const RowError = Type.Object({ row: Type.Integer(), field: Type.String(), message: Type.String() });
export const ImportSchema = Type.Object({
  id: Type.String(),
  object: Type.Literal('contact_import'),
  status: Type.String({ enum: ['running', 'completed', 'failed'] }),
  filename: Nullable(Type.String()),
  bytes_total: Type.Union([Type.Integer(), Type.Null()]),
  bytes_read: Type.Integer(),
  progress: Type.Union([Type.Number(), Type.Null()], { description: 'Percent of the file read, when its size is known.' }),
  rows_processed: Type.Integer(),
  created: Type.Integer(),
  updated: Type.Integer(),
  failed: Type.Integer(),
  errors: Type.Array(RowError, { description: 'The first 1,000 rows that failed; `failed` counts them all.' }),
  started_at: Type.String({ format: 'date-time' }),
  finished_at: Nullable(Type.String({ format: 'date-time' })),
});

export function contactRoutes(app: FastifyInstance, p: Platform): void {
  // A CSV body is handed to the route as the raw stream; the importer counts and caps its bytes.
  app.addContentTypeParser(['text/csv', 'application/csv'], (_req, payload, done) => done(null, payload));
  // Every multipart limit is set, not only the file's: field values, parts and header pairs too.
  void app.register(multipart, { limits: { fileSize: IMPORT_MAX_BYTES, files: 1, fields: 10, fieldSize: 64 * 1024, parts: 12, headerPairs: 100 } });

  app.post(
    '/v1/contacts',
    { config: { scope: 'contacts:write' }, schema: { tags: ['contacts'], summary: 'Create a contact', body: ContactInput, response: { 201: ContactSchema, ...errorResponses(400, 401, 403, 422) } } },
    async (req, reply) => reply.status(201).send(await p.contacts.create(principalOf(req), req.body)),
  );

  app.get(
    '/v1/contacts',
    {
      config: { scope: 'contacts:read' },
      schema: {
        tags: ['contacts'],
        summary: 'List contacts, newest first',
        querystring: Type.Object({
          phone: Type.Optional(Type.String()),
          tag: Type.Optional(Type.String()),
          owner: Type.Optional(Type.String()),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
          cursor: Type.Optional(Type.String()),
        }),
        response: { 200: Type.Object({ data: Type.Array(ContactSchema), next_cursor: Nullable(Type.String()) }), ...errorResponses(400, 401, 403, 422) },
      },
    },
    async (req) => p.contacts.list(principalOf(req), req.query as { phone?: string; tag?: string; owner?: string; limit?: number; cursor?: string }),
  );

  app.get(
    '/v1/contacts/:id',
    { config: { scope: 'contacts:read' }, schema: { tags: ['contacts'], summary: 'Fetch a contact', params: IdParams, response: { 200: ContactSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => p.contacts.get(principalOf(req), (req.params as { id: string }).id),
  );

  app.patch(
    '/v1/contacts/:id',
    {
      config: { scope: 'contacts:write' },
      schema: { tags: ['contacts'], summary: 'Change a contact (custom_fields merge key by key; null removes a key)', params: IdParams, body: ContactInput, response: { 200: ContactSchema, ...errorResponses(400, 401, 403, 404, 422) } },
    },
    async (req) => p.contacts.update(principalOf(req), (req.params as { id: string }).id, req.body),
  );

  app.post(
    '/v1/contacts/import',
    {
      config: { scope: 'contacts:write' },
      bodyLimit: IMPORT_MAX_BYTES,
      schema: {
        tags: ['contacts'],
        summary: 'Import contacts from a CSV (text/csv body or a multipart file); answers when done',
        description:
          'Columns: phone (required), name or first_name/last_name, time_zone, owner, tags (; separated), consent_status, consent_purpose, consent_channel, consent_disclosure, consent_form_url, consent_ip, consent_collected_at; any other column is a custom field. Rows that fail are listed in `errors` and skipped. While it runs, GET /v1/contacts/imports/{id} shows its progress.',
        consumes: ['text/csv', 'multipart/form-data'],
        response: { 200: ImportSchema, ...errorResponses(400, 401, 403, 413) },
      },
    },
    async (req) => {
      const pr = principalOf(req);
      let stream: Readable;
      let filename: string | null = null;
      let bytesTotal: number | null = null;
      if (req.isMultipart()) {
        const file = await req.file();
        if (!file) throw validation('file', 'Send the CSV as a multipart file field.');
        stream = file.file;
        filename = file.filename ? file.filename.slice(0, 200) : null;
      } else {
        const ct = String(req.headers['content-type'] ?? '');
        if (!/^(text|application)\/csv/i.test(ct) || !req.body) throw validation('content-type', 'Send the CSV as a text/csv body or as a multipart/form-data file.');
        stream = req.body as Readable;
        const len = Number(req.headers['content-length']);
        bytesTotal = Number.isFinite(len) && len > 0 ? len : null;
      }
      return p.contactImports.run({ accountId: pr.accountId, mode: pr.mode }, stream, { filename, bytesTotal });
    },
  );

  app.get(
    '/v1/contacts/imports',
    {
      config: { scope: 'contacts:read' },
      schema: { tags: ['contacts'], summary: 'Recent imports, running ones with their progress', response: { 200: Type.Object({ data: Type.Array(ImportSchema) }), ...errorResponses(401, 403) } },
    },
    async (req) => {
      const pr = principalOf(req);
      return { data: await p.contactImports.list({ accountId: pr.accountId, mode: pr.mode }) };
    },
  );

  app.get(
    '/v1/contacts/imports/:id',
    { config: { scope: 'contacts:read' }, schema: { tags: ['contacts'], summary: "An import's progress and row errors", params: IdParams, response: { 200: ImportSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => {
      const pr = principalOf(req);
      return p.contactImports.get({ accountId: pr.accountId, mode: pr.mode }, (req.params as { id: string }).id);
    },
  );
}
