// The dashboard in a real browser: sign in, send from the UI and watch delivery, reply in a
// conversation, import a CSV, run a small campaign, hostile input rendered as text, and a viewer
// who sees no bodies.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { browserEnv, chromiumMissing, CHROMIUM, screenshot, signedIn, type BrowserEnv } from './browser.ts';
import { eventually, sim } from './helpers.ts';

const skip = chromiumMissing ? `no Chromium at ${CHROMIUM} (apt-get install chromium; .ci/run does)` : false;

describe('dashboard in a browser', { skip, timeout: 240_000 }, () => {
  let b: BrowserEnv;
  before(async () => {
    b = await browserEnv({ workers: true });
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

  test('analytics charts render under the CSP; the page works at phone width', { timeout: 30_000 }, async () => {
    const { page, context, offsite } = await signedIn(b, 'admin', { width: 390 });
    const violations: string[] = [];
    page.on('console', (m) => {
      if (/Content.Security.Policy|Refused to/i.test(m.text())) violations.push(m.text());
    });
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('link', { name: 'Analytics', exact: true }).click();
    await page.getByRole('heading', { name: 'Volume' }).waitFor();
    await page.locator('.recharts-surface').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no sideways scrolling at phone width (${overflow}px)`);
    await screenshot(page, 'dashboard-analytics-phone');
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('link', { name: 'Settings', exact: true }).click();
    await page.getByRole('tab', { name: 'Twilio credentials' }).click();
    await page.getByText('Account SID').waitFor();
    assert.deepEqual(violations, []);
    assert.deepEqual(offsite, []);
    await context.close();
  });

  test('sends a message from the UI and watches its status reach delivered', { timeout: 30_000 }, async () => {
    const { page, context } = await signedIn(b, 'sender');
    const form = page.getByRole('form', { name: 'Send a message' });
    await form.getByLabel('To').fill(sim(1));
    await form.getByLabel('Text').fill('Your appointment is at 10:00');
    await form.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('message-status').getByText('delivered').waitFor({ timeout: 15_000 });
    await page.getByText('Status timeline').waitFor();
    await screenshot(page, 'dashboard-message-delivered');
    await context.close();
  });

  test('replies in a conversation; hostile inbound text and names stay inert text', { timeout: 30_000 }, async () => {
    const { page, context } = await signedIn(b, 'agent');
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.getByLabel('Data mode').selectOption('test');
    await page.getByText('Test mode:').waitFor();
    const from = sim(3, '303');
    const hostile = '<script>alert(1)</script> hi <img src=x onerror=alert(2)>';
    const inbound = await b.env.req('POST', '/v1/simulator/inbound', { body: { from, body: hostile } });
    assert.equal(inbound.statusCode < 300, true, inbound.body);
    const contacts = await b.env.req('GET', `/v1/contacts?phone=${encodeURIComponent(from)}`);
    const contact = contacts.json().data[0];
    await b.env.req('PATCH', `/v1/contacts/${contact.id}`, { body: { name: '<img src=x onerror=alert(1)>' } });
    await page.getByRole('link', { name: 'Inbox', exact: true }).click();
    await page.getByTestId('conversation').first().click();
    await page.getByTestId('thread-message').getByText(hostile).waitFor();
    await page.getByText('<img src=x onerror=alert(1)>').first().waitFor();
    assert.equal(await page.locator('main img, main script').count(), 0, 'no element made from the text');
    await page.getByLabel(/Reply from/).fill('Thanks, we will call you back');
    await page.getByRole('button', { name: 'Send reply' }).click();
    await page.getByTestId('thread-message').getByText('Thanks, we will call you back').waitFor();
    await eventually(async () => {
      const res = await b.env.req('GET', `/v1/messages?direction=outbound&to=${encodeURIComponent(from)}`);
      return res.json().data.find((m: { body: string }) => m.body === 'Thanks, we will call you back');
    });
    await screenshot(page, 'dashboard-inbox-reply');
    assert.deepEqual(dialogs, []);
    await context.close();
  });

  test('imports a CSV and shows the contacts', { timeout: 30_000 }, async () => {
    const { page, context } = await signedIn(b, 'sender');
    const file = join(b.env.dir, 'contacts.csv');
    writeFileSync(file, `phone,name\n${sim(4, '404')},Ada\n${sim(5, '404')},Grace\nnot-a-number,Bad\n`);
    await page.getByRole('link', { name: 'Contacts', exact: true }).click();
    await page.getByLabel(/CSV file/).setInputFiles(file);
    await page.getByRole('button', { name: 'Import' }).click();
    await page.getByTestId('import-result').getByText('2 created').waitFor();
    await page.getByTestId('contact-row').getByText('Grace').waitFor();
    await screenshot(page, 'dashboard-csv-import');
    await context.close();
  });

  test('starts a small campaign and watches it complete', { timeout: 30_000 }, async () => {
    const { page, context } = await signedIn(b, 'sender');
    await page.getByRole('link', { name: 'Campaigns', exact: true }).click();
    const form = page.getByRole('form', { name: 'New campaign' });
    await form.getByLabel('Name', { exact: true }).fill('Flu shots');
    await form.getByLabel('Text', { exact: true }).fill('Hi {{ first_name }}, flu shots are in.');
    await form.getByLabel(/Recipients/).fill(`phone,first_name\n${sim(6, '505')},Ann\n${sim(7, '505')},Bo\n${sim(8, '505')},Cy\n`);
    await form.getByLabel(/Rate/).fill('6000');
    await form.getByRole('button', { name: 'Create campaign' }).click();
    await page.getByRole('button', { name: 'Start' }).click();
    await page.getByTestId('campaign-status').getByText('completed').waitFor({ timeout: 20_000 });
    await page.getByTestId('stat-delivered').getByText('3').waitFor({ timeout: 10_000 });
    await screenshot(page, 'dashboard-campaign-completed');
    await context.close();
  });

  test('a viewer sees no message bodies and is offered no writes', { timeout: 30_000 }, async () => {
    const secret = 'Your lab result: positive';
    const sent = await b.env.req('POST', '/v1/messages', { token: b.env.liveKey, body: { to: sim(2, '606'), body: secret } });
    assert.equal(sent.statusCode, 202, sent.body);
    const id = sent.json().id;
    const { page, context } = await signedIn(b, 'viewer');
    await page.getByTestId('message-row').first().waitFor();
    assert.equal(await page.getByRole('form', { name: 'Send a message' }).count(), 0);
    await page.goto(`${b.base}/messages/${id}`);
    await page.getByTestId('message-body').getByText('(body hidden)').waitFor();
    assert.equal(await page.getByText(secret).count(), 0);
    await page.getByRole('link', { name: 'Messages', exact: true }).click();
    await page.getByTestId('message-row').first().waitFor();
    assert.ok(!(await page.content()).includes(secret));
    await screenshot(page, 'dashboard-viewer');
    await context.close();
  });
});
