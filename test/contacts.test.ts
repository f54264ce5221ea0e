// Contacts: the API, CSV imports (text/csv body, multipart file, the CLI), and the consent
// ledger's CSV export.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { csvCell } from '../src/consent/consent-service.ts';
import { TEST_DEFAULTS, testEnv, type TestEnv } from './helpers.ts';

describe('contacts', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv();
  });
  after(() => env.close());

  test('create, fetch, change and list; one contact per number; scopes and modes kept apart', async () => {
    const res = await env.req('POST', '/v1/contacts', {
      body: { phone: '(202) 555-0123', name: 'Grace\u0007 Hopper', time_zone: 'America/New_York', owner: 'user_42', tags: ['vip', 'vip', 'navy'], custom_fields: { plan: 'gold', seats: 3 } },
    });
    assert.equal(res.statusCode, 201, res.body);
    const c = res.json();
    assert.match(c.id, /^contact_/);
    assert.equal(c.phone, '+12025550123');
    assert.equal(c.name, 'Grace Hopper');
    assert.deepEqual(c.tags, ['vip', 'navy']);

    const dup = await env.req('POST', '/v1/contacts', { body: { phone: '+12025550123' } });
    assert.equal(dup.statusCode, 400);
    assert.equal(dup.json().error.details.contact_id, c.id);
    assert.equal((await env.req('POST', '/v1/contacts', { body: { phone: 'call me' } })).json().error.code, 'INVALID_NUMBER');
    assert.equal((await env.req('POST', '/v1/contacts', { body: { phone: '+12025550124', time_zone: 'Mars/Olympus' } })).json().error.details.field, 'time_zone');

    const patched = await env.req('PATCH', `/v1/contacts/${c.id}`, { body: { owner: 'team:support', custom_fields: { seats: null, region: 'east' } } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().custom_fields, { plan: 'gold', region: 'east' });
    assert.equal((await env.req('GET', `/v1/contacts/${c.id}`)).json().owner, 'team:support');
    assert.equal((await env.req('PATCH', `/v1/contacts/${c.id}`, { body: { phone: '+12025550199' } })).statusCode, 400);

    await env.req('POST', '/v1/contacts', { body: { phone: '+12025550125', tags: ['navy'] } });
    const byTag = (await env.req('GET', '/v1/contacts?tag=navy&limit=1')).json();
    assert.equal(byTag.data.length, 1);
    assert.ok(byTag.next_cursor);
    const page2 = (await env.req('GET', `/v1/contacts?tag=navy&limit=1&cursor=${byTag.next_cursor}`)).json();
    assert.equal(page2.data[0].id, c.id);

    const reader = await env.key({ scopes: ['contacts:read'] });
    assert.equal((await env.req('POST', '/v1/contacts', { token: reader, body: { phone: '+12025550126' } })).statusCode, 403);
    assert.equal((await env.req('GET', `/v1/contacts/${c.id}`, { token: env.liveKey })).statusCode, 404);
    const openapi = (await env.req('GET', '/openapi.json', { token: null })).json();
    for (const path of ['/v1/contacts', '/v1/contacts/{id}', '/v1/contacts/import', '/v1/consent/export', '/v1/conversations', '/v1/conversations/{id}/messages', '/v1/settings/messaging']) {
      assert.ok(openapi.paths[path], path);
    }
  });

  test('a CSV import of 3,000 rows as text/csv: created, updated, per-row errors, consent records, progress kept', async () => {
    const lines = ['Phone,Name,Time Zone,Owner,Tags,Consent Status,Consent Disclosure,Plan'];
    for (let i = 0; i < 3000; i++) {
      const phone = i === 10 ? 'not-a-number' : `+1312${String(2000000 + i)}`;
      const tz = i === 20 ? 'Nowhere/Land' : i % 2 ? 'America/Chicago' : '';
      const consent = i < 5 ? 'opted_in' : '';
      lines.push(`${phone},"Person ${i}, Jr",${tz},team:a,a;b,${consent},${consent ? '"Text me ""deals"""' : ''},p${i % 3}`);
    }
    lines.push('+13122000001,Renamed,,,c,,,');
    const res = await env.req('POST', '/v1/contacts/import', { headers: { 'content-type': 'text/csv' }, payload: lines.join('\n') });
    assert.equal(res.statusCode, 200, res.body);
    const r = res.json();
    assert.equal(r.status, 'completed');
    assert.equal(r.rows_processed, 3001);
    assert.equal(r.created, 2998);
    assert.equal(r.updated, 1);
    assert.equal(r.failed, 2);
    assert.deepEqual(r.errors.map((e: { row: number; field: string }) => [e.row, e.field]), [[12, 'phone'], [22, 'time_zone']]);
    assert.equal(r.progress, 100);

    const one = (await env.req('GET', '/v1/contacts?phone=%2B13122000001')).json().data[0];
    assert.equal(one.name, 'Renamed');
    assert.deepEqual(one.tags, ['a', 'b', 'c']);
    assert.equal(one.time_zone, 'America/Chicago');
    assert.deepEqual(one.custom_fields, { plan: 'p1' });

    const history = (await env.req('GET', '/v1/consent?phone=%2B13122000003')).json().data;
    assert.equal(history.length, 1);
    assert.equal(history[0].source, 'import');
    assert.equal(history[0].purpose, 'marketing');
    assert.equal(history[0].evidence.disclosure, 'Text me "deals"');
    assert.equal(history[0].evidence.import_id, r.id);
    const marketing = await env.req('POST', '/v1/messages', { body: { to: '+13122000003', body: 'deal', purpose: 'marketing' } });
    assert.notEqual(marketing.json().error?.code, 'CONSENT_REQUIRED');

    const listed = (await env.req('GET', '/v1/contacts/imports')).json().data;
    assert.equal(listed[0].id, r.id);
    assert.equal((await env.req('GET', `/v1/contacts/imports/${r.id}`)).json().created, 2998);
  });

  test('a running import shows its progress', async () => {
    const input = new PassThrough();
    const head = ['phone,name'];
    for (let i = 0; i < 2500; i++) head.push(`+1617${String(3000000 + i)},P${i}`);
    const size = Buffer.byteLength(`${head.join('\n')}\n`) * 2;
    const seen: number[] = [];
    const running = env.p.contactImports.run({ accountId: env.accountId, mode: 'test' }, input, { bytesTotal: size, onProgress: (pr) => seen.push(pr.rows) });
    input.write(`${head.join('\n')}\n`);
    let mid: Record<string, any> | undefined;
    for (let i = 0; i < 200 && !(mid && mid.rows_processed >= 2000); i++) {
      await new Promise((r) => setTimeout(r, 10));
      mid = (await env.req('GET', '/v1/contacts/imports')).json().data[0];
    }
    assert.equal(mid?.status, 'running');
    assert.equal(mid?.rows_processed, 2000);
    assert.ok(mid!.progress > 0 && mid!.progress < 100, String(mid?.progress));
    input.end('+16175559999,Last\n');
    const done = await running;
    assert.equal(done.status, 'completed');
    assert.equal(done.created, 2501);
    assert.deepEqual(seen, [1000, 2000, 2501]);
  });

  test('imports refuse a file without a phone column, and accept a multipart file', async () => {
    const bad = await env.req('POST', '/v1/contacts/import', { headers: { 'content-type': 'text/csv' }, payload: 'name,email\nA,a@example.com\n' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'file');
    const json = await env.req('POST', '/v1/contacts/import', { body: { phone: '+12025550100' } });
    assert.equal(json.statusCode, 400);

    const boundary = '----switchboard-test';
    const csv = 'mobile,first_name,last_name\n+1 415 555 0100,Alan,Turing\n';
    const payload = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="people.csv"\r\nContent-Type: text/csv\r\n\r\n${csv}\r\n--${boundary}--\r\n`;
    const res = await env.req('POST', '/v1/contacts/import', { headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, payload });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().created, 1);
    assert.equal(res.json().filename, 'people.csv');
    assert.equal((await env.req('GET', '/v1/contacts?phone=%2B14155550100')).json().data[0].name, 'Alan Turing');
  });

  test('the CLI imports a file into the same database', () => {
    const file = join(env.dir, 'cli.csv');
    writeFileSync(file, 'phone,name\n+16175550100,Cli One\n+16175550101,Cli Two\nbad,Nobody\n');
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'contacts', 'import', file, '--default', '--mode', 'test', '--json'], {
      env: { ...process.env, DATABASE_URL: env.dbPath, LOG_LEVEL: 'silent', SWITCHBOARD_ENCRYPTION_KEY: TEST_DEFAULTS.SWITCHBOARD_ENCRYPTION_KEY },
      encoding: 'utf8',
    });
    assert.equal(res.status, 0, res.stderr);
    const report = JSON.parse(res.stdout);
    assert.equal(report.created, 2);
    assert.equal(report.failed, 1);
  });

  test('the consent ledger exports as CSV, oldest first, with evidence, and spreadsheet formulas defused', async () => {
    const phone = '+12065550100';
    await env.req('POST', '/v1/consent', { body: { phone, status: 'opted_in', purpose: 'marketing', source: 'web_form', evidence: { disclosure: '=HYPERLINK("x")', ip: '198.51.100.7', form_url: 'https://example.com/f' } } });
    await env.req('POST', '/v1/consent', { body: { phone, status: 'opted_out', purpose: 'marketing' } });
    const res = await env.req('GET', `/v1/consent/export?phone=${encodeURIComponent(phone)}`);
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    const lines = res.body.trim().split('\r\n');
    assert.equal(lines[0], 'id,created_at,phone,status,purpose,channel,source,disclosure,ip,user_agent,form_url,message_id,evidence');
    assert.equal(lines.length, 3);
    assert.ok(lines[1].includes(`,${phone},opted_in,marketing,all,web_form,"'=HYPERLINK(""x"")",198.51.100.7,`));
    assert.ok(lines[2].includes(',opted_out,marketing,all,api,'));
    const all = await env.req('GET', '/v1/consent/export');
    assert.ok(all.body.split('\r\n').length > 5, 'the whole ledger');
    assert.equal((await env.req('GET', '/v1/consent/export', { token: await env.key({ scopes: ['contacts:read'] }) })).statusCode, 403);
    assert.equal(csvCell('+15550100'), '+15550100');
    assert.equal(csvCell('-cmd|x'), "'-cmd|x");
  });
});
