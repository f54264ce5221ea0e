// Browser tests: the built dashboard served by a real platform on a real socket, driven by
// playwright-core in Debian's Chromium (/usr/bin/chromium; .ci/run installs it). The build runs
// once per source change (scripts/build-dashboard.mjs caches by modification time).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
// @ts-expect-error: a plain .mjs script without types
import { buildDashboard } from '../scripts/build-dashboard.mjs';
import type { Role } from '../src/users/roles.ts';
import { testEnv, type TestEnv } from './helpers.ts';
import { addUser, PASSWORD } from './people-helpers.ts';

export const CHROMIUM = process.env.SWITCHBOARD_CHROMIUM ?? '/usr/bin/chromium';
export const chromiumMissing = !existsSync(CHROMIUM);

export interface BrowserEnv {
  env: TestEnv;
  base: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function browserEnv(opts: Parameters<typeof testEnv>[0] = {}): Promise<BrowserEnv> {
  await (buildDashboard as (o: { quiet: boolean }) => Promise<boolean>)({ quiet: true });
  const env = await testEnv(opts);
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = env.app.server.address();
  const base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  // playwright-core gives every launch a fresh, temporary --user-data-dir of its own (and
  // refuses the flag); its temporary files go under a folder of ours, removed at close.
  const profile = mkdtempSync(join(tmpdir(), 'switchboard-chromium-'));
  let browser: Browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      timeout: 20_000,
      env: { ...process.env, TMPDIR: profile },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  } catch (e) {
    await env.close();
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    env,
    base,
    browser,
    async close() {
      await browser.close().catch(() => {});
      await env.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A new person of `role`, signed in through the sign-in form; the page fails the test on any request to another host. */
export async function signedIn(b: BrowserEnv, role: Role, opts: { width?: number } = {}): Promise<{ page: Page; context: BrowserContext; email: string; offsite: string[] }> {
  const user = await addUser(b.env, role);
  const context = await b.browser.newContext({ viewport: { width: opts.width ?? 1280, height: 900 } });
  const page = await context.newPage();
  // Shorter than a test's own limit, so a missing element fails with its locator named.
  page.setDefaultTimeout(10_000);
  const offsite: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(b.base) && !r.url().startsWith('data:')) offsite.push(r.url());
  });
  await page.goto(`${b.base}/`);
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
  return { page, context, email: user.email, offsite };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync('test-results', { recursive: true });
  await page.screenshot({ path: join('test-results', `${name}.png`), fullPage: true });
}
