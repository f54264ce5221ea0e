// The CLI and the server as a person runs them: real processes, a real port on 127.0.0.1,
// the same SQLite file shared by the CLI and the server; a SIGKILL in the middle loses nothing.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshDatabase, sim } from './helpers.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'switchboard.js');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

describe('CLI and server processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-cli-'));
  let database: { url: string; drop: () => Promise<void> };
  const env: Record<string, string | undefined> = {
    ...process.env,
    SWITCHBOARD_ENCRYPTION_KEY: '5e'.repeat(32),
    LOG_LEVEL: 'warn',
    SWITCHBOARD_POLL_MS: '50',
    SWITCHBOARD_SIMULATOR_RECEIPT_MS: '100',
  };
  let server: ChildProcess | null = null;
  let port = 0;
  let firstStartOutput = '';

  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  async function startServer(): Promise<string> {
    // Another process may take the free port between the check and the listen: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        return await startServerOnce();
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test(String(err))) throw err;
      }
    }
  }

  async function startServerOnce(): Promise<string> {
    port = await freePort();
    const child = spawn(process.execPath, [BIN, 'start', '--port', String(port)], { env: { ...env, HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const deadline = Date.now() + 120_000; // a loaded 2-core machine has taken 25 s to start it
    while (Date.now() < deadline) {
      try {
        // No pooled socket left behind: the server closes an idle one after 72 s, and a fetch
        // made right after a long spawnSync would reuse it before seeing the close.
        const r = await fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: 'close' } });
        if (r.ok) return output;
      } catch {
        // not listening yet
      }
      if (child.exitCode !== null) throw new Error(`server exited: ${output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not start: ${output}`);
  }

  function kill(signal: NodeJS.Signals) {
    const child = server!;
    server = null;
    return new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill(signal);
      setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
    });
  }

  const api = async (method: string, path: string, token: string, body?: unknown) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, json: (await r.json()) as any };
  };

  before(async () => {
    database = await freshDatabase(dir);
    env.DATABASE_URL = database.url;
    firstStartOutput = await startServer();
  });
  after(async () => {
    if (server) await kill('SIGTERM');
    await database.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the first start prints admin keys for the default account', () => {
    assert.match(firstStartOutput, /admin API key \(live mode\): sb_live_\S+/);
    assert.match(firstStartOutput, /admin API key \(test mode\): sb_test_\S+/);
  });

  test('the first start prints the owner’s dashboard login; users create adds people who can sign in', async () => {
    const email = /dashboard sign-in \(owner\): (\S+)/.exec(firstStartOutput)?.[1];
    const password = /password: +(\S+)/.exec(firstStartOutput)?.[1];
    assert.ok(email && password, firstStartOutput);
    // Without keep-alive: a pooled socket the server closes while a later spawnSync blocks this
    // process would be reused by the next test's fetch ("other side closed").
    const signIn = (e: string, pw: string) =>
      new Promise<{ status: number; cookie: string; body: { user: { role: string } } }>((resolve, reject) => {
        const payload = JSON.stringify({ email: e, password: pw });
        const r = httpRequest({ host: '127.0.0.1', port, path: '/v1/session', method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, cookie: String(res.headers['set-cookie'] ?? ''), body: JSON.parse(text) }));
        });
        r.on('error', reject);
        r.end(payload);
      });
    const owner = await signIn(email, password);
    assert.equal(owner.status, 200);
    assert.equal(owner.body.user.role, 'owner');

    const made = spawnSync(process.execPath, [BIN, 'users', 'create', '--default', '--email', 'nurse@clinic.example', '--role', 'agent', '--password-stdin', '--json'], { env, input: 'a long enough passphrase\n', encoding: 'utf8', timeout: 60_000 });
    assert.equal(made.status, 0, made.stderr);
    const user = JSON.parse(made.stdout);
    assert.match(user.id, /^user_/);
    assert.equal(user.role, 'agent');
    assert.equal(user.created_by, 'cli');
    const nurse = await signIn('nurse@clinic.example', 'a long enough passphrase');
    assert.equal(nurse.status, 200);
    assert.match(nurse.cookie, /sb_session=.*HttpOnly.*SameSite=Strict/);
    const noStdin = cli('users', 'create', '--default', '--email', 'x@clinic.example', '--role', 'viewer', '--json');
    assert.equal(noStdin.code, 1);
    assert.match(noStdin.stderr, /--password-stdin/);
  });

  test('accounts create, keys create and clients create print one JSON object', () => {
    const acct = cli('accounts', 'create', '--name', 'Dental Co', '--json');
    assert.equal(acct.code, 0, acct.stderr);
    const a = JSON.parse(acct.stdout);
    assert.match(a.id, /^acct_/);
    const key = cli('keys', 'create', '--account', a.id, '--scopes', 'messages:send,messages:read', '--mode', 'live', '--json');
    assert.equal(key.code, 0, key.stderr);
    const k = JSON.parse(key.stdout);
    assert.match(k.id, /^key_/);
    assert.match(k.secret, /^sb_live_/);
    assert.deepEqual(k.scopes, ['messages:send', 'messages:read']);
    const client = cli('clients', 'create', '--default', '--scopes', 'messages:send', '--mode', 'test', '--json');
    assert.equal(client.code, 0, client.stderr);
    const c = JSON.parse(client.stdout);
    assert.ok(c.client_id && c.client_secret);
    const bad = cli('keys', 'create', '--default', '--scopes', 'messages:fly', '--json');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /Unknown scope/);
  });

  test('a key made by the CLI sends through the running server; the message is delivered', async () => {
    const key = JSON.parse(cli('keys', 'create', '--default', '--scopes', 'messages:send,messages:read', '--mode', 'test', '--json').stdout).secret;
    const t0 = Date.now();
    const sent = await api('POST', '/v1/messages', key, { to: '+1 202 555 0100', body: 'first message' });
    assert.equal(sent.status, 202);
    let status = sent.json.status;
    while (status !== 'delivered' && Date.now() - t0 < 10_000) {
      await new Promise((r) => setTimeout(r, 25));
      status = (await api('GET', `/v1/messages/${sent.json.id}`, key)).json.status;
    }
    assert.equal(status, 'delivered');
    console.log(`# accepted to delivered through a real port: ${Date.now() - t0} ms`);
  });

  test('SIGKILL with messages in flight, then a restart: every accepted message reaches a final status', async () => {
    const key = JSON.parse(cli('keys', 'create', '--default', '--scopes', 'messages:send,messages:read', '--mode', 'test', '--json').stdout).secret;
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await api('POST', '/v1/messages', key, { to: sim(i % 10, '503'), body: `crash ${i}` });
      assert.equal(r.status, 202);
      ids.push(r.json.id);
    }
    await kill('SIGKILL');
    await startServer();
    // A killed worker's leases run out after 15 s; then its attempts are resolved.
    const deadline = Date.now() + 60_000;
    let pending = ids;
    while (pending.length && Date.now() < deadline) {
      const next: string[] = [];
      for (const id of pending) if ((await api('GET', `/v1/messages/${id}`, key)).json.status !== 'delivered') next.push(id);
      pending = next;
      if (pending.length) await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(pending, [], 'every accepted message was delivered after the crash');
  });

  test('send from the CLI follows the status to delivered (with the server running too)', () => {
    const r = cli('send', '--to', '+1 202 555 0107', '--body', 'from the CLI', '--timeout', '20');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^msg_\S+ queued$/m);
    assert.match(r.stdout, /^msg_\S+ delivered$/m);
  });

  test('bad configuration fails fast with one clear line', () => {
    const r = spawnSync(process.execPath, [BIN, 'migrate'], { env: { ...env, PORT: 'not-a-port' }, encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /PORT/);
  });
});
