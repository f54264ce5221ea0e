// Sender pools (/v1/sender-pools): a message sent from a pool gets one of its numbers at accept
// time — the same number for the same recipient (sticky, kept across restarts and pool
// changes), a number with the recipient's area code first, and only a number that can carry
// the message's channel.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('sender pools', () => {
  const clock = new ManualClock();
  let env: TestEnv;
  const ids: Record<string, string> = {};
  // Numbers in three area codes, one UK number, and an sms-only one in 212.
  const numbers = { sf: sim(1, '415'), ny: sim(2, '212'), chi: sim(3, '312'), uk: '+442079460123', nySmsOnly: sim(4, '212') };
  before(async () => {
    env = await testEnv({ clock });
    for (const [k, address] of Object.entries(numbers)) {
      const res = await env.req('POST', '/v1/senders', { body: { address, capabilities: k === 'nySmsOnly' ? ['sms'] : ['sms', 'mms'] } });
      assert.equal(res.statusCode, 201, res.body);
      ids[k] = res.json().id;
    }
  });
  after(() => env.close());

  const send = async (body: Record<string, unknown>) => {
    const res = await env.req('POST', '/v1/messages', { body: { body: 'hello', ...body } });
    assert.equal(res.statusCode, 202, res.body);
    return res.json();
  };

  test('create, read, change and delete a pool; bad input names the field and writes nothing', async () => {
    const created = await env.req('POST', '/v1/sender-pools', { body: { name: 'Support', addresses: ['(415) 555-0101', numbers.ny] } });
    assert.equal(created.statusCode, 201, created.body);
    const pool = created.json();
    assert.match(pool.id, /^pool_/);
    assert.deepEqual(pool.addresses, [numbers.sf, numbers.ny]);
    assert.deepEqual(pool.sender_ids, [ids.sf, ids.ny]);
    assert.equal(pool.sticky, true);
    assert.equal(pool.area_code_match, true);
    assert.equal(pool.default, false);

    const patched = await env.req('PATCH', `/v1/sender-pools/${pool.id}`, { body: { sender_ids: [ids.chi], sticky: false } });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.deepEqual(patched.json().addresses, [numbers.chi]);
    assert.equal(patched.json().sticky, false);
    assert.equal(patched.json().area_code_match, true, 'a PATCH leaves what it does not name');
    assert.equal((await env.req('GET', `/v1/sender-pools/${pool.id}`)).json().name, 'Support');
    assert.equal((await env.req('GET', '/v1/sender-pools')).json().data.length, 1);

    const unknown = await env.req('POST', '/v1/sender-pools', { body: { name: 'X', addresses: ['+12025550199'] } });
    assert.equal(unknown.statusCode, 400);
    assert.equal(unknown.json().error.details.field, 'addresses[0]');
    const both = await env.req('POST', '/v1/sender-pools', { body: { name: 'X', addresses: [numbers.sf], sender_ids: [ids.sf] } });
    assert.equal(both.statusCode, 400);
    const empty = await env.req('POST', '/v1/sender-pools', { body: { name: 'X' } });
    assert.equal(empty.statusCode, 400);
    assert.equal(empty.json().error.details.field, 'sender_ids');
    const dup = await env.req('POST', '/v1/sender-pools', { body: { name: 'Support', sender_ids: [ids.sf] } });
    assert.equal(dup.statusCode, 400);
    assert.equal(dup.json().error.details.field, 'name');
    assert.equal((await env.req('GET', '/v1/sender-pools')).json().data.length, 1, 'nothing refused was written');

    const readOnly = await env.key({ scopes: ['messages:send'] });
    assert.equal((await env.req('GET', '/v1/sender-pools', { token: readOnly })).statusCode, 403);
    const other = await env.p.accounts.create('Other');
    const otherKey = await env.key({ accountId: other.id });
    assert.equal((await env.req('GET', `/v1/sender-pools/${pool.id}`, { token: otherKey })).statusCode, 404);
    const stolen = await env.req('POST', '/v1/messages', { token: otherKey, body: { to: sim(9), body: 'x', from: pool.id } });
    assert.equal(stolen.statusCode, 400, 'another account’s pool is not a sender');

    assert.equal((await env.req('DELETE', `/v1/sender-pools/${pool.id}`)).statusCode, 200);
    assert.equal((await env.req('GET', `/v1/sender-pools/${pool.id}`)).statusCode, 404);
    assert.equal((await env.req('GET', '/v1/senders')).json().data.length, 6, 'the senders stay');
  });

  test('area-code match first, then country; sticky across new senders and a restart', async () => {
    const pool = (await env.req('POST', '/v1/sender-pools', { body: { name: 'Sales', sender_ids: [ids.sf, ids.ny, ids.uk] } })).json();
    // The recipient's area code wins, whatever the hash would pick.
    for (let i = 10; i < 20; i++) assert.equal((await send({ to: sim(i, '415'), from: pool.id })).from, numbers.sf);
    for (let i = 10; i < 20; i++) assert.equal((await send({ to: sim(i, '212'), sender_pool_id: pool.id })).from, numbers.ny);
    // A US area code the pool lacks: a US number, never the UK one.
    const chicagoans = Array.from({ length: 12 }, (_, i) => sim(30 + i, '312'));
    const first = new Map<string, string>();
    for (const to of chicagoans) {
      const m = await send({ to, from: pool.id });
      assert.ok([numbers.sf, numbers.ny].includes(m.from), m.from);
      first.set(to, m.from);
    }
    assert.equal(new Set(first.values()).size, 2, 'recipients are spread over the pool');
    assert.equal((await send({ to: '+442079460456', from: pool.id })).from, numbers.uk);

    // A Chicago number joins: those recipients keep the number they already heard from.
    const patched = await env.req('PATCH', `/v1/sender-pools/${pool.id}`, { body: { sender_ids: [ids.sf, ids.ny, ids.uk, ids.chi] } });
    assert.equal(patched.statusCode, 200, patched.body);
    for (const to of chicagoans) assert.equal((await send({ to, from: pool.id })).from, first.get(to), `sticky for ${to}`);
    // A new Chicago recipient gets the Chicago number.
    assert.equal((await send({ to: sim(60, '312'), from: pool.id })).from, numbers.chi);

    await env.restart();
    for (const to of chicagoans) assert.equal((await send({ to, from: pool.id })).from, first.get(to), `sticky after a restart for ${to}`);

    // A sender removed from the pool: its recipients move to another number, and stay there.
    const leaving = first.get(chicagoans[0])!;
    const keep = [ids.sf, ids.ny, ids.chi].filter((id) => id !== (leaving === numbers.sf ? ids.sf : ids.ny));
    await env.req('PATCH', `/v1/sender-pools/${pool.id}`, { body: { sender_ids: keep } });
    const moved = (await send({ to: chicagoans[0], from: pool.id })).from;
    assert.notEqual(moved, leaving);
    assert.equal((await send({ to: chicagoans[0], from: pool.id })).from, moved);
  });

  test('only senders that carry the channel; the default pool when the message names no sender', async () => {
    const pool = (await env.req('POST', '/v1/sender-pools', { body: { name: 'NY', sender_ids: [ids.nySmsOnly], default: true } })).json();
    assert.equal(pool.default, true);
    // No from, no pool: the default pool.
    assert.equal((await send({ to: sim(70, '212') })).from, numbers.nySmsOnly);
    // An MMS: the pool has no number that sends media.
    const mms = await env.req('POST', '/v1/messages', { body: { to: sim(70, '212'), channel: 'mms', media_urls: ['https://example.com/a.jpg'] } });
    assert.equal(mms.statusCode, 422, mms.body);
    assert.equal(mms.json().error.code, 'FILTERED');
    assert.equal(mms.json().error.details.reason, 'no_capable_sender');
    // With an mms-capable number added, an MMS takes it even though the recipient's sticky
    // number is the sms-only one; the next SMS goes from the sticky number again.
    await env.req('PATCH', `/v1/sender-pools/${pool.id}`, { body: { sender_ids: [ids.nySmsOnly, ids.ny] } });
    assert.equal((await send({ to: sim(70, '212'), channel: 'mms', media_urls: ['https://example.com/a.jpg'] })).from, numbers.ny);
    assert.equal((await send({ to: sim(70, '212') })).from, numbers.nySmsOnly);
    // A plain from still wins over the default pool.
    assert.equal((await send({ to: sim(70, '212'), from: numbers.uk })).from, numbers.uk);
    const conflicting = await env.req('POST', '/v1/messages', { body: { to: sim(70, '212'), body: 'x', from: numbers.uk, sender_pool_id: pool.id } });
    assert.equal(conflicting.statusCode, 400);
    assert.equal(conflicting.json().error.details.field, 'sender_pool_id');
    // One default per account: making another pool the default unsets this one.
    const other = (await env.req('POST', '/v1/sender-pools', { body: { name: 'SF', sender_ids: [ids.sf], default: true } })).json();
    assert.equal((await env.req('GET', `/v1/sender-pools/${pool.id}`)).json().default, false);
    assert.equal((await send({ to: sim(71, '212') })).from, numbers.sf);
    await env.req('DELETE', `/v1/sender-pools/${other.id}`);
  });

  test('a sender deleted from the account leaves its pools', async () => {
    const extra = (await env.req('POST', '/v1/senders', { body: { address: sim(5, '505') } })).json();
    const pool = (await env.req('POST', '/v1/sender-pools', { body: { name: 'Temp', sender_ids: [extra.id, ids.chi] } })).json();
    assert.equal((await send({ to: sim(80, '505'), from: pool.id })).from, extra.address);
    assert.equal((await env.req('DELETE', `/v1/senders/${extra.id}`)).statusCode, 200);
    assert.deepEqual((await env.req('GET', `/v1/sender-pools/${pool.id}`)).json().sender_ids, [ids.chi]);
    assert.equal((await send({ to: sim(80, '505'), from: pool.id })).from, numbers.chi);
  });
});
