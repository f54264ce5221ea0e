// Text to speech both ways: with espeak-ng and sox installed (CI installs them), a text becomes
// a valid WAV at the telephony rate; with the program missing, a text-only rvm message routed to
// a provider that needs audio is refused at acceptance with FILTERED, and nothing is stored.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readWav } from '../src/media/media-types.ts';
import { resolveProgram, TextToSpeech } from '../src/media/text-to-speech.ts';
import { testEnv, type TestEnv } from './helpers.ts';

describe('text to speech with espeak-ng and sox', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_PUBLIC_URL: 'https://sb.example.com' } });
  });
  after(() => env.close());

  test('the programs are installed here (CI installs espeak-ng and sox with apt)', () => {
    assert.ok(resolveProgram('espeak-ng'), 'espeak-ng on PATH');
    assert.ok(resolveProgram('sox'), 'sox on PATH');
    assert.equal(env.p.speech.unavailable(), null);
  });

  test('a text becomes an 8 kHz mono 16-bit PCM WAV, stored as media and served at its public URL; the same text again is the cached file', async () => {
    const text = 'Your appointment with Doctor Patel is tomorrow at ten thirty.';
    const first = await env.p.speech.render({ accountId: env.accountId, mode: 'test', text });
    assert.equal(first.cached, false);
    assert.equal(first.contentType, 'audio/wav');
    assert.match(first.url, /^https:\/\/sb\.example\.com\/media\/media_[0-9a-z]{26}\/[A-Za-z0-9_-]+$/);
    const served = await env.app.inject({ method: 'GET', url: new URL(first.url).pathname });
    assert.equal(served.statusCode, 200);
    assert.equal(served.headers['content-type'], 'audio/wav');
    const wav = readWav(served.rawPayload)!;
    assert.deepEqual([wav.format, wav.sampleRate, wav.channels, wav.bitsPerSample], [1, 8000, 1, 16]);
    const seconds = wav.dataBytes / (8000 * 2);
    assert.ok(seconds > 1.5 && seconds < 15, `about as long as the sentence takes to say (${seconds.toFixed(1)} s)`);
    const again = await env.p.speech.render({ accountId: env.accountId, mode: 'test', text });
    assert.deepEqual([again.cached, again.mediaId], [true, first.mediaId]);
    const otherMode = await env.p.speech.render({ accountId: env.accountId, mode: 'live', text });
    assert.notEqual(otherMode.mediaId, first.mediaId, 'test and live media are apart');
  });

  test('a text that looks like an option is spoken, not obeyed (it goes on stdin, no shell)', async () => {
    const wav = await env.p.speech.synthesise('--help; rm -rf / $(reboot)');
    assert.equal(readWav(wav)?.sampleRate, 8000);
  });

  test('a program that hangs is stopped at the timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-tts-'));
    try {
      const slow = join(dir, 'slow-tts');
      writeFileSync(slow, '#!/bin/sh\nsleep 10\n');
      chmodSync(slow, 0o755);
      const tts = new TextToSpeech({ program: slow, converter: 'sox', voice: 'en-us', timeoutMs: 300 }, env.p.media, () => 'https://sb.example.com');
      const started = Date.now();
      await assert.rejects(tts.synthesise('hello'), /stopped \(SIGKILL, over 300 ms\)/);
      assert.ok(Date.now() - started < 5000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('text to speech missing: refused at acceptance', () => {
  let env: TestEnv;
  let connectorId = '';
  before(async () => {
    env = await testEnv({ config: { SWITCHBOARD_PUBLIC_URL: 'https://sb.example.com', SWITCHBOARD_TTS_PROGRAM: '/nonexistent/espeak-ng' } });
    const created = await env.req('POST', '/v1/connectors', { body: { name: 'Drop Cowboy', type: 'dropcowboy', config: { api_key: 'k', api_secret: 's', base_url: 'http://127.0.0.1:9' } } });
    assert.equal(created.statusCode, 201, created.body);
    connectorId = created.json().id;
    assert.equal((await env.req('POST', '/v1/routes', { body: { priority: 1, filters: { channel: 'rvm' }, connector_id: connectorId } })).statusCode, 201);
  });
  after(() => env.close());

  test('a text-only rvm message to the audio-only provider is 422 FILTERED naming the missing program; nothing is stored', async () => {
    const res = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+12025550123', channel: 'rvm', body: 'Your order has shipped.' } });
    assert.equal(res.statusCode, 422);
    const err = res.json().error;
    assert.equal(err.code, 'FILTERED');
    assert.equal(err.details.reason, 'text_to_speech_unavailable');
    assert.deepEqual(err.details.connector_ids, [connectorId]);
    assert.match(err.details.problem, /\/nonexistent\/espeak-ng is not installed/);
    assert.match(err.message, /media_urls/);
    const stored = (await env.req('GET', '/v1/messages?channel=rvm', { token: env.liveKey })).json().data;
    assert.equal(stored.length, 0);
  });

  test('with its audio given it is accepted; a voice call on the simulator and test mode need no rendering', async () => {
    const withAudio = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+12025550124', channel: 'rvm', media_urls: ['https://cdn.example.com/shipped.mp3'] } });
    assert.equal(withAudio.statusCode, 202, withAudio.body);
    const testMode = await env.req('POST', '/v1/messages', { body: { to: '+12025550125', channel: 'rvm', body: 'Your order has shipped.' } });
    assert.equal(testMode.statusCode, 202, testMode.body);
    const voice = await env.req('POST', '/v1/messages', { token: env.liveKey, body: { to: '+12025550126', channel: 'voice', body: 'Your order has shipped.' } });
    assert.equal(voice.statusCode, 202, voice.body);
  });

  test('without SWITCHBOARD_PUBLIC_URL the provider could not fetch the audio: refused too, saying so', async () => {
    const bare = await testEnv({});
    try {
      const c = await bare.req('POST', '/v1/connectors', { body: { name: 'DC', type: 'dropcowboy', config: { api_key: 'k', api_secret: 's' } } });
      await bare.req('POST', '/v1/routes', { body: { priority: 1, filters: { channel: 'rvm' }, connector_id: c.json().id } });
      const res = await bare.req('POST', '/v1/messages', { token: bare.liveKey, body: { to: '+12025550127', channel: 'rvm', body: 'Hello.' } });
      assert.equal(res.statusCode, 422);
      assert.match(res.json().error.details.problem, /SWITCHBOARD_PUBLIC_URL is not set/);
    } finally {
      await bare.close();
    }
  });
});
