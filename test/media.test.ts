// Media through the API: uploads as a raw body or a multipart file, the type checked against the
// bytes, the size limit, the public unguessable URL served with its type and length and no
// credentials, reading and deleting, tenancy and test/live separation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sniffType } from '../src/media/media-types.ts';
import { GIF, JPEG, MP3, PNG, wavFile } from './media-fixtures.ts';
import { testEnv, type TestEnv } from './helpers.ts';

function multipart(file: Buffer, contentType: string, filename = 'file.bin'): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----switchboardtest7MA4YWxk';
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`),
    file,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

describe('media', () => {
  let env: TestEnv;
  const MAX = 4096;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_MEDIA_MAX_BYTES: MAX, SWITCHBOARD_PUBLIC_URL: 'https://sb.example.com' } });
  });
  after(() => env.close());

  const upload = (body: Buffer, contentType: string, token: string | null = env.testKey) =>
    env.app.inject({ method: 'POST', url: '/v1/media', headers: { 'content-type': contentType, ...(token ? { authorization: `Bearer ${token}` } : {}) }, payload: body });
  const uploadMultipart = (file: Buffer, contentType: string, token = env.testKey) => {
    const m = multipart(file, contentType);
    return env.app.inject({ method: 'POST', url: '/v1/media', headers: { ...m.headers, authorization: `Bearer ${token}` }, payload: m.payload });
  };
  const publicPath = (url: string) => new URL(url).pathname;

  test('the signatures of the five accepted types are recognised, and nothing else', () => {
    assert.deepEqual([wavFile(), MP3, Buffer.from([0xff, 0xfb, 0x90, 0x00]), PNG, JPEG, GIF].map((b) => sniffType(b)?.contentType), ['audio/wav', 'audio/mpeg', 'audio/mpeg', 'image/png', 'image/jpeg', 'image/gif']);
    assert.equal(sniffType(Buffer.from('%PDF-1.7')), null);
    assert.equal(sniffType(Buffer.from('RIFF\x00\x00\x00\x00AVI ', 'latin1')), null);
  });

  test('a raw WAV upload: 201 with an unguessable URL on SWITCHBOARD_PUBLIC_URL, served without credentials with its type and length', async () => {
    const wav = wavFile();
    const res = await upload(wav, 'audio/wav');
    assert.equal(res.statusCode, 201, res.body);
    const m = res.json();
    assert.match(m.id, /^media_[0-9a-z]{26}$/);
    assert.equal(m.content_type, 'audio/wav');
    assert.equal(m.size, wav.length);
    assert.ok(m.created_at);
    const url = new URL(m.url);
    assert.equal(url.origin, 'https://sb.example.com');
    const [, prefix, id, token] = url.pathname.split('/');
    assert.deepEqual([prefix, id], ['media', m.id]);
    assert.ok(token.length >= 40, 'the token is long enough not to be guessed');

    const served = await env.app.inject({ method: 'GET', url: url.pathname });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'audio/wav');
    assert.equal(served.headers['content-length'], String(wav.length));
    assert.ok(served.rawPayload.equals(wav));
    const head = await env.app.inject({ method: 'HEAD', url: url.pathname });
    assert.equal(head.statusCode, 200);
    assert.equal(head.headers['content-length'], String(wav.length));

    const wrongToken = await env.app.inject({ method: 'GET', url: `/media/${m.id}/${'x'.repeat(token.length)}` });
    assert.equal(wrongToken.statusCode, 404);
    assert.equal(wrongToken.json().error.code, 'NOT_FOUND');
    assert.equal((await env.req('GET', `/v1/media/${m.id}`)).json().url, m.url);
  });

  test('multipart uploads of each image type and of mp3; aliases such as audio/mp3 and image/jpg are accepted', async () => {
    for (const [file, type, expected] of [
      [PNG, 'image/png', 'image/png'],
      [JPEG, 'image/jpg', 'image/jpeg'],
      [GIF, 'image/gif', 'image/gif'],
      [MP3, 'audio/mp3', 'audio/mpeg'],
    ] as const) {
      const res = await uploadMultipart(file, type);
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json().content_type, expected);
      const served = await env.app.inject({ method: 'GET', url: publicPath(res.json().url) });
      assert.equal(served.headers['content-type'], expected);
      assert.ok(served.rawPayload.equals(file));
    }
  });

  test('a wrong content type is refused by the bytes, not the header: 400 naming both; nothing is stored', async () => {
    const lie = await upload(wavFile(), 'image/png');
    assert.equal(lie.statusCode, 400);
    assert.equal(lie.json().error.code, 'VALIDATION_ERROR');
    assert.deepEqual([lie.json().error.details.declared, lie.json().error.details.detected], ['image/png', 'audio/wav']);
    const fake = await uploadMultipart(Buffer.from('<html>not an image</html>'), 'image/jpeg');
    assert.equal(fake.statusCode, 400);
    assert.equal(fake.json().error.details.detected, null);
    const pdf = await upload(Buffer.from('%PDF-1.7 ...'), 'application/pdf');
    assert.equal(pdf.statusCode, 400);
    assert.equal(pdf.json().error.details.field, 'content_type');
    const json = await env.req('POST', '/v1/media', { body: { url: 'https://example.com/a.mp3' } });
    assert.equal(json.statusCode, 400);
    assert.equal(json.json().error.code, 'VALIDATION_ERROR');
    const count = await env.p.storage.db.selectFrom('media').select((eb) => eb.fn.countAll<number>().as('n')).where('content_type', '=', 'image/png').executeTakeFirstOrThrow();
    assert.equal(Number(count.n), 1, 'only the real PNG of the multipart test');
  });

  test('a file over the limit is 413 PAYLOAD_TOO_LARGE, raw or multipart', async () => {
    const big = wavFile(MAX); // 2 × MAX bytes of samples
    const raw = await upload(big, 'audio/wav');
    assert.equal(raw.statusCode, 413);
    assert.equal(raw.json().error.code, 'PAYLOAD_TOO_LARGE');
    const form = await uploadMultipart(big, 'audio/wav');
    assert.equal(form.statusCode, 413);
    assert.equal(form.json().error.code, 'PAYLOAD_TOO_LARGE');
  });

  test('scopes: uploading needs messages:send, reading messages:read; no token is 401', async () => {
    assert.equal((await upload(PNG, 'image/png', null)).statusCode, 401);
    const reader = await env.key({ scopes: ['messages:read'] });
    const refused = await upload(PNG, 'image/png', reader);
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().error.details.required_scope, 'messages:send');
    const sender = await env.key({ scopes: ['messages:send'] });
    assert.equal((await upload(PNG, 'image/png', sender)).statusCode, 201);
  });

  test("another account's media id, and a live key on test media, are 404; the public URL still serves it", async () => {
    const mine = (await upload(PNG, 'image/png')).json();
    const other = await env.p.accounts.create('Other clinic');
    const otherKey = await env.key({ accountId: other.id, mode: 'test' });
    assert.equal((await env.req('GET', `/v1/media/${mine.id}`, { token: otherKey })).statusCode, 404);
    assert.equal((await env.req('DELETE', `/v1/media/${mine.id}`, { token: otherKey })).statusCode, 404);
    const live = await env.req('GET', `/v1/media/${mine.id}`, { token: env.liveKey });
    assert.equal(live.statusCode, 404, 'test-mode media is not seen by a live key');
    assert.equal(live.json().error.code, 'NOT_FOUND');
    const liveUpload = (await upload(JPEG, 'image/jpeg', env.liveKey)).json();
    assert.equal((await env.req('GET', `/v1/media/${liveUpload.id}`)).statusCode, 404, 'live media is not seen by a test key');
    assert.equal((await env.req('GET', `/v1/media/${liveUpload.id}`, { token: env.liveKey })).statusCode, 200);
    assert.equal((await env.app.inject({ method: 'GET', url: publicPath(mine.url) })).statusCode, 200);
  });

  test('delete: 204, then the details and the public URL are 404', async () => {
    const m = (await upload(GIF, 'image/gif')).json();
    const del = await env.req('DELETE', `/v1/media/${m.id}`);
    assert.equal(del.statusCode, 204);
    assert.equal((await env.req('GET', `/v1/media/${m.id}`)).statusCode, 404);
    assert.equal((await env.app.inject({ method: 'GET', url: publicPath(m.url) })).statusCode, 404);
    assert.equal((await env.req('DELETE', `/v1/media/${m.id}`)).statusCode, 404);
  });

  test('an uploaded file can be the audio of an rvm message and the image of an MMS', async () => {
    const audio = (await upload(wavFile(), 'audio/wav')).json();
    const rvm = await env.req('POST', '/v1/messages', { body: { to: '+12025550101', channel: 'rvm', media_urls: [audio.url] } });
    assert.equal(rvm.statusCode, 202, rvm.body);
    const image = (await upload(PNG, 'image/png')).json();
    const mms = await env.req('POST', '/v1/messages', { body: { to: '+12025550102', channel: 'mms', body: 'Your receipt', media_urls: [image.url] } });
    assert.equal(mms.statusCode, 202, mms.body);
    assert.deepEqual(mms.json().media_urls, [image.url]);
  });

  test('the routes are in the OpenAPI document', async () => {
    const doc = (await env.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    assert.ok(doc.paths['/v1/media']?.post);
    assert.ok(doc.paths['/v1/media/{id}']?.get && doc.paths['/v1/media/{id}']?.delete);
    assert.ok(doc.paths['/media/{id}/{token}']?.get);
  });
});
