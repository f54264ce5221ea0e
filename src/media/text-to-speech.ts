// Text to speech for voice and rvm routes whose provider needs an audio file (a ringless-
// voicemail provider takes a URL, not text). A local program speaks the text — Debian's
// espeak-ng by default (SWITCHBOARD_TTS_PROGRAM) — and sox (SWITCHBOARD_TTS_CONVERTER) turns it
// into telephony audio: 8 kHz, mono, 16-bit PCM WAV. The result is stored as media (so every
// process can serve it) and passed to the provider by URL.
//
// When it runs: at submit time, inside the connector's submit, never in prepare (which writes
// nothing). The audio is cached by (voice, text) per account and mode, so a retry or the same
// reminder to a thousand people renders once. Acceptance only asks `unavailable()`: a message
// that would need rendering when no program is installed is refused there, never accepted and
// then lost.
//
// Each program runs as its own process, without a shell (arguments are never parsed by one;
// the text goes on stdin, so a text that starts with "-" is not an option), with a timeout,
// in a temporary folder removed afterwards.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { MediaService } from './media-service.ts';

export const TELEPHONY_RATE = 8000;
const MAX_OUTPUT_BYTES = 50 * 1024 * 1024;

export interface SpeechOptions {
  program: string;
  converter: string;
  voice: string;
  timeoutMs: number;
}

export interface RenderedSpeech {
  mediaId: string;
  url: string;
  contentType: string;
  size: number;
  cached: boolean;
}

/** Where a program would run from: its own path, or the first PATH entry that has it. */
export function resolveProgram(program: string, path = process.env.PATH ?? ''): string | null {
  const executable = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (program.includes('/')) return executable(program) ? program : null;
  for (const dir of path.split(delimiter)) if (dir && executable(join(dir, program))) return join(dir, program);
  return null;
}

export class SpeechUnavailableError extends Error {}

export class TextToSpeech {
  private checked: { at: number; problem: string | null } | null = null;

  constructor(
    private opts: SpeechOptions,
    private media: MediaService,
    private publicUrl: () => string | undefined,
  ) {}

  /**
   * Why audio cannot be rendered here, in words, or null when it can. Read at acceptance, so it
   * is cached for 10 s: installing the program takes effect without a restart.
   */
  unavailable(now = Date.now()): string | null {
    if (this.checked && now - this.checked.at < 10_000) return this.checked.problem;
    let problem: string | null = null;
    if (!resolveProgram(this.opts.program)) problem = `the text-to-speech program ${this.opts.program} is not installed (SWITCHBOARD_TTS_PROGRAM; on Debian: apt-get install espeak-ng sox)`;
    else if (!resolveProgram(this.opts.converter)) problem = `the audio converter ${this.opts.converter} is not installed (SWITCHBOARD_TTS_CONVERTER; on Debian: apt-get install sox)`;
    else if (!this.publicUrl()) problem = 'SWITCHBOARD_PUBLIC_URL is not set, so the provider could not fetch the rendered audio';
    this.checked = { at: now, problem };
    return problem;
  }

  /** The cache key: the same voice saying the same text is the same file. */
  key(text: string): string {
    return createHash('sha256').update(`${this.opts.program}\u0000${this.opts.voice}\u0000${TELEPHONY_RATE}\u0000${text}`).digest('hex');
  }

  /** Audio for this text, rendered now or found from before, as media with a public URL. */
  async render(req: { accountId: string; mode: string; text: string }): Promise<RenderedSpeech> {
    const key = this.key(req.text);
    const found = await this.media.findRendered(req.accountId, req.mode, key);
    if (found) return { mediaId: found.id, url: this.media.url(found), contentType: found.content_type, size: found.size, cached: true };
    const problem = this.unavailable();
    if (problem) throw new SpeechUnavailableError(`Text to speech is not available: ${problem}.`);
    const wav = await this.synthesise(req.text);
    const stored = await this.media.storeRendered(req.accountId, req.mode, key, wav, 'audio/wav');
    return { mediaId: stored.id, url: this.media.url(stored), contentType: stored.content_type, size: stored.size, cached: false };
  }

  /** Speaks the text into a WAV at the telephony rate. */
  async synthesise(text: string): Promise<Buffer> {
    const program = resolveProgram(this.opts.program);
    const converter = resolveProgram(this.opts.converter);
    if (!program || !converter) throw new SpeechUnavailableError(`Text to speech is not available: ${this.unavailable(0) ?? 'program missing'}.`);
    const dir = mkdtempSync(join(tmpdir(), 'switchboard-tts-'));
    try {
      const spoken = join(dir, 'spoken.wav');
      const out = join(dir, 'telephony.wav');
      // espeak-ng: read the text from stdin (-- would not stop it reading options from a text
      // argument in every version; stdin never does), 150 words a minute, write a WAV file.
      await run(program, ['--stdin', '-v', this.opts.voice, '-s', '150', '-w', spoken], text, this.opts.timeoutMs);
      // sox: to 8 kHz, one channel, 16-bit signed PCM, written to a file so that the WAV
      // header carries the true length (a pipe cannot be rewound to fix it).
      await run(converter, [spoken, '-r', String(TELEPHONY_RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', out], null, this.opts.timeoutMs);
      const wav = readFileSync(out);
      if (wav.length > MAX_OUTPUT_BYTES) throw new Error(`rendered audio is ${wav.length} bytes, over ${MAX_OUTPUT_BYTES}`);
      return wav;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/**
 * Runs one program without a shell; rejects on a non-zero exit, a signal or the timeout. The
 * program gets a process group of its own, so that at the timeout whatever it started dies too.
 */
function run(program: string, args: string[], input: string | null, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'ignore', 'pipe'], shell: false, detached: true });
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.stderr.on('data', (c: Buffer) => {
      if (stderr.length < 2000) stderr += c.toString();
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit', not 'close': a killed program's children may hold its pipes open a while longer.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else if (timedOut) reject(new Error(`${program} was stopped (SIGKILL, over ${timeoutMs} ms)`));
      else reject(new Error(signal ? `${program} was stopped (${signal})` : `${program} exited with ${code}: ${stderr.trim().slice(0, 300)}`));
    });
    child.stdin.on('error', () => {}); // a program that exits early closes its stdin; its exit code says why
    child.stdin.end(input ?? '');
  });
}
