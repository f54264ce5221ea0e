// The dashboard in a real browser: sign in, send from the UI and watch delivery, reply in a
// conversation, import a CSV, run a small campaign, and a viewer who sees no bodies.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { browserEnv, chromiumMissing, CHROMIUM, screenshot, signedIn, type BrowserEnv } from './browser.ts';

const skip = chromiumMissing ? `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)` : false;

describe('dashboard in a browser', { skip, timeout: 180_000 }, () => {
  let b: BrowserEnv;
  before(async () => {
    b = await browserEnv();
  });
  after(async () => {
    await b?.close();
  });

  test('signs in, shows the message log, and loads nothing from another host', { timeout: 30_000 }, async () => {
    const { page, context, offsite } = await signedIn(b, 'owner');
    await page.getByRole('heading', { name: 'Messages', level: 1 }).waitFor();
    const res = await page.request.get(`${b.base}/messages`);
    assert.match(res.headers()['content-security-policy'] ?? '', /default-src 'self'/);
    await screenshot(page, 'dashboard-signed-in');
    assert.deepEqual(offsite, []);
    await context.close();
  });
});
