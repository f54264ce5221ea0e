// Templates: versioned Liquid texts with declared variables, strict rendering, previews that warn
// about UCS-2, and messages that name a template instead of a body.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { testEnv, type TestEnv } from './helpers.ts';

describe('templates', () => {
  let env: TestEnv;
  before(async () => {
    env = await testEnv();
  });
  after(() => env.close());

  test('create, preview, a new version on change; undeclared and missing variables are named', async () => {
    const undeclared = await env.req('POST', '/v1/templates', { body: { name: 'bad', body: 'Hi {{ name }}, code {{ code }}', variables: ['name'] } });
    assert.equal(undeclared.statusCode, 400);
    assert.equal(undeclared.json().error.code, 'VALIDATION_ERROR');
    assert.deepEqual(undeclared.json().error.details.undeclared, ['code']);
    const syntax = await env.req('POST', '/v1/templates', { body: { name: 'bad', body: 'Hi {{ name', variables: ['name'] } });
    assert.equal(syntax.statusCode, 400);

    const res = await env.req('POST', '/v1/templates', { body: { name: 'reminder', body: 'Hi {{ name }}, your appointment is at {{ time }}.', variables: ['name', 'time'] } });
    assert.equal(res.statusCode, 201, res.body);
    const t = res.json();
    assert.match(t.id, /^tpl_/);
    assert.equal(t.version, 1);
    assert.equal((await env.req('POST', '/v1/templates', { body: { name: 'reminder', body: 'x' } })).statusCode, 400);

    const ok = await env.req('POST', `/v1/templates/${t.id}/preview`, { body: { variables: { name: 'Ada', time: '10:00' } } });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(ok.json(), { body: 'Hi Ada, your appointment is at 10:00.', encoding: 'GSM-7', segments: 1, warnings: [] });

    const missing = await env.req('POST', `/v1/templates/${t.id}/preview`, { body: { variables: { name: 'Ada' } } });
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json().error.code, 'VALIDATION_ERROR');
    assert.deepEqual(missing.json().error.details.missing, ['time']);
    assert.match(missing.json().error.message, /"time"/);

    const ucs = (await env.req('POST', `/v1/templates/${t.id}/preview`, { body: { variables: { name: 'Zoë 😀', time: '10:00' } } })).json();
    assert.equal(ucs.encoding, 'UCS-2');
    assert.equal(ucs.warnings.length, 1);
    assert.match(ucs.warnings[0], /"name".*UCS-2/);

    const v2 = await env.req('PATCH', `/v1/templates/${t.id}`, { body: { body: 'Hello {{ name }}: {{ time }}', variables: ['name', 'time'] } });
    assert.equal(v2.statusCode, 200, v2.body);
    assert.equal(v2.json().version, 2);
    assert.equal((await env.req('GET', `/v1/templates/${t.id}?version=1`)).json().body, 'Hi {{ name }}, your appointment is at {{ time }}.');
    assert.equal((await env.req('GET', `/v1/templates/${t.id}`)).json().version, 2);
    assert.equal((await env.req('PATCH', `/v1/templates/${t.id}`, { body: { body: 'Hi {{ who }}' } })).json().error.details.undeclared[0], 'who');
    assert.equal((await env.req('GET', '/v1/templates')).json().data.length, 1);
    // Another mode sees nothing.
    assert.equal((await env.req('GET', `/v1/templates/${t.id}`, { token: env.liveKey })).statusCode, 404);
  });

  test('a message names a template: rendered, recorded with its version, filled from the contact', async () => {
    const t = (await env.req('POST', '/v1/templates', { body: { name: 'code', body: 'Your code for {{ name }} is {{ code }}', variables: ['name', 'code'] } })).json();
    await env.req('POST', '/v1/contacts', { body: { phone: '+12025550104', name: 'Grace' } });

    const sent = await env.req('POST', '/v1/messages', { body: { to: '+12025550104', template: { id: t.id, variables: { code: '1234' } } } });
    assert.equal(sent.statusCode, 202, sent.body);
    assert.equal(sent.json().body, 'Your code for Grace is 1234');
    assert.equal(sent.json().metadata.template_id, t.id);
    assert.equal(sent.json().metadata.template_version, '1');

    const byName = await env.req('POST', '/v1/messages', { body: { to: '+12025550105', template: { name: 'code', variables: { name: 'Bo', code: '9' } } } });
    assert.equal(byName.json().body, 'Your code for Bo is 9');

    const missing = await env.req('POST', '/v1/messages', { body: { to: '+12025550106', template: { id: t.id, variables: { code: '1' } } } });
    assert.equal(missing.statusCode, 400);
    assert.deepEqual(missing.json().error.details.missing, ['name']);
    const both = await env.req('POST', '/v1/messages', { body: { to: '+12025550106', body: 'x', template: { id: t.id } } });
    assert.equal(both.statusCode, 400);
    assert.equal((await env.req('POST', '/v1/messages', { body: { to: '+12025550106', template: { id: 'tpl_nope' } } })).statusCode, 404);
    // Nothing refused left a message behind.
    assert.equal((await env.req('GET', '/v1/messages?to=%2B12025550106')).json().data.length, 0);

    await env.req('DELETE', `/v1/templates/${t.id}`);
    assert.equal((await env.req('POST', '/v1/messages', { body: { to: '+12025550104', template: { id: t.id, variables: { code: '1' } } } })).statusCode, 404);
  });
});
