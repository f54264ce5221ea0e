// /v1/media (scope messages:send to upload, messages:read to read): upload audio and images as
// a multipart file or as the raw body with its Content-Type; read and delete them. And the
// public /media/{id}/{token}, with no credentials, where carriers and providers fetch a file.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, validation } from '../errors.ts';
import { principalOf } from '../http/auth.ts';
import { errorResponses, ErrorBody, IdParams } from '../http/schemas.ts';
import type { Platform } from '../platform.ts';
import { ACCEPTED_CONTENT_TYPES } from './media-types.ts';

export const MediaSchema = Type.Object({
  id: Type.String({ examples: ['media_01jd8x9q2r5b7c3v4w6y8z0a1b'] }),
  object: Type.Literal('media'),
  url: Type.Union([Type.String(), Type.Null()], { description: 'Public, unguessable URL on SWITCHBOARD_PUBLIC_URL; give it in media_urls. null for a person who may not see message bodies (the viewer role).' }),
  url_redacted: Type.Optional(Type.Boolean({ description: 'true when url is withheld (the viewer role).' })),
  content_type: Type.String({ enum: ACCEPTED_CONTENT_TYPES }),
  size: Type.Integer({ description: 'Bytes.' }),
  source: Type.String({ enum: ['upload', 'tts'], description: '`tts`: audio rendered from a message text.' }),
  created_at: Type.String({ format: 'date-time' }),
});

const requestBase = (req: FastifyRequest) => `${req.protocol}://${req.host}`;

export async function mediaRoutes(app: FastifyInstance, p: Platform): Promise<void> {
  const max = p.media.maxBytes;
  await app.register(async (scope) => {
    // The raw body of an upload, whatever its declared type, is kept as bytes (at most the
    // media limit: 413 beyond it) so that a wrong type gets our answer, not a parser's.
    // multipart/form-data and JSON keep their own parsers.
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: max }, (_req, body, done) => done(null, body));
    scope.post(
      '/v1/media',
      {
        config: { scope: 'messages:send' },
        // Multipart framing adds a little to the file; the file itself is held to `max` below.
        bodyLimit: max + 64 * 1024,
        schema: {
          tags: ['media'],
          summary: 'Upload audio (mp3, wav) or an image (jpeg, png, gif)',
          description: `Send the file as a multipart/form-data field named file, or as the raw request body with its Content-Type. The type is checked against the file's first bytes; at most ${max} bytes. The answer's url is public and unguessable: put it in media_urls (mms, or the audio of a voice or rvm message).`,
          consumes: ['multipart/form-data', ...ACCEPTED_CONTENT_TYPES],
          response: { 201: MediaSchema, ...errorResponses(400, 401, 403, 413) },
        },
      },
      async (req, reply) => {
        const principal = principalOf(req);
        let data: Buffer;
        let declared: string | undefined;
        if (req.isMultipart()) {
          const file = await req.file({ limits: { fileSize: max, files: 1 } });
          if (!file) throw validation('file', 'Send the file as a multipart field named file.');
          data = await file.toBuffer();
          declared = file.mimetype;
        } else if (Buffer.isBuffer(req.body)) {
          data = req.body;
          declared = req.headers['content-type'];
        } else {
          throw validation('content-type', `Send the file as multipart/form-data or as the raw body with its Content-Type (${ACCEPTED_CONTENT_TYPES.join(', ')}).`, { accepted: ACCEPTED_CONTENT_TYPES });
        }
        return reply.status(201).send(await p.media.upload(principal, data, declared, requestBase(req)));
      },
    );
  });

  app.get(
    '/v1/media/:id',
    { config: { scope: 'messages:read' }, schema: { tags: ['media'], summary: 'Fetch a media file’s details', params: IdParams, response: { 200: MediaSchema, ...errorResponses(401, 403, 404) } } },
    async (req) => p.media.get(principalOf(req), (req.params as { id: string }).id, requestBase(req)),
  );

  app.delete(
    '/v1/media/:id',
    {
      config: { scope: 'messages:send' },
      schema: { tags: ['media'], summary: 'Delete a media file; its public URL answers 404 from then on', params: IdParams, response: { 204: Type.Null(), ...errorResponses(401, 403, 404) } },
    },
    async (req, reply) => {
      await p.media.delete(principalOf(req), (req.params as { id: string }).id);
      return reply.status(204).send();
    },
  );

  app.get(
    '/media/:id/:token',
    {
      config: { public: true },
      schema: {
        tags: ['media'],
        summary: 'A media file, for carriers and providers (no credentials: the URL is the secret)',
        security: [],
        params: Type.Object({ id: Type.String({ maxLength: 100 }), token: Type.String({ maxLength: 100 }) }),
        response: { 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const { id, token } = req.params as { id: string; token: string };
      const file = await p.media.fetchPublic(id, token);
      if (!file) throw new AppError('NOT_FOUND', 'No such media.', {});
      return reply
        .header('content-type', file.contentType)
        .header('content-length', String(file.data.length))
        .header('cache-control', 'public, max-age=3600')
        .header('x-content-type-options', 'nosniff')
        .send(file.data);
    },
  );
}
