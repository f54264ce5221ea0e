// Inbound routing rules (issue 4): replies reach the endpoint of the number they came to, of
// their keyword, or of the contact's owner, instead of one shared inbox.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { testEnv, type TestEnv } from './helpers.ts';
import { Receiver } from './webhook-receiver.ts';

describe('inbound routing rules', () => {
  const clock = new ManualClock(Date.now());
  let env: TestEnv;
  const shared = new Receiver();
  const billing = new Receiver();
  const orders = new Receiver();
  const ids: Record<string, string> = {};

  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      await env.p.runDue();
      clock.advance(500);
    }
  };
  const receivedBy = (rx: Receiver, from: string) => rx.received.filter((r) => r.type === 'message.received' && (r.body.data as { from?: string }).from === from);

  before(async () => {
    env = await testEnv({ clock });
    for (const [name, rx] of Object.entries({ shared, billing, orders })) {
      await rx.start();
      const ep = (await env.req('POST', '/v1/webhooks', { body: { url: rx.url, events: ['message.received'] } })).json();
      rx.secrets = [ep.secret];
      ids[name] = ep.id;
    }
  });
  after(async () => {
    await env.close();
    for (const rx of [shared, billing, orders]) await rx.stop();
  });

  test('rules by owner and by keyword send a reply to one endpoint; an unmatched reply goes to every subscriber', async () => {
    const byOwner = await env.req('POST', '/v1/inbound-routes', { body: { priority: 10, match: { owner: 'team:billing' }, endpoint_id: ids.billing } });
    assert.equal(byOwner.statusCode, 201, byOwner.body);
    const byKeyword = await env.req('POST', '/v1/inbound-routes', { body: { priority: 20, match: { keyword: 'order' }, endpoint_id: ids.orders } });
    assert.equal(byKeyword.json().match.keyword, 'ORDER');
    assert.equal((await env.req('POST', '/v1/contacts', { body: { phone: '+1 202 555 0161', owner: 'team:billing' } })).statusCode, 201);

    await env.req('POST', '/v1/simulator/inbound', { body: { from: '+1 202 555 0161', body: 'Is my invoice paid?' } });
    await env.req('POST', '/v1/simulator/inbound', { body: { from: '+1 202 555 0162', body: 'order 1234 where is it' } });
    await env.req('POST', '/v1/simulator/inbound', { body: { from: '+1 202 555 0163', body: 'hello?' } });
    await settle();

    assert.equal(receivedBy(billing, '+12025550161').length, 1, 'the owner’s endpoint hears its contact');
    assert.equal(receivedBy(shared, '+12025550161').length, 0, 'and the shared inbox does not');
    assert.equal(receivedBy(orders, '+12025550162').length, 1, 'the keyword’s endpoint hears the order question');
    assert.equal(receivedBy(shared, '+12025550162').length, 0);
    for (const rx of [shared, billing, orders]) assert.equal(receivedBy(rx, '+12025550163').length, 1, 'no rule: every subscriber hears it');
    for (const rx of [shared, billing, orders]) assert.equal(rx.badSignatures, 0);
  });

  test('a rule by the account number a message came to', async () => {
    const sender = await env.req('POST', '/v1/senders', { body: { address: '+1 415 555 0177' } });
    assert.equal(sender.statusCode, 201);
    const rule = await env.req('POST', '/v1/inbound-routes', { body: { priority: 5, match: { number: '(415) 555-0177' }, endpoint_id: ids.orders } });
    assert.equal(rule.json().match.number, '+14155550177');
    await env.req('POST', '/v1/simulator/inbound', { body: { from: '+1 202 555 0164', to: '+1 415 555 0177', body: 'hi' } });
    await settle();
    assert.equal(receivedBy(orders, '+12025550164').length, 1);
    assert.equal(receivedBy(shared, '+12025550164').length, 0);
  });

  test('rules are checked and scoped: bad input, another account’s endpoint, list and delete', async () => {
    assert.equal((await env.req('POST', '/v1/inbound-routes', { body: { match: {}, endpoint_id: ids.shared } })).statusCode, 400);
    assert.equal((await env.req('POST', '/v1/inbound-routes', { body: { match: { colour: 'red' }, endpoint_id: ids.shared } })).statusCode, 400);
    assert.equal((await env.req('POST', '/v1/inbound-routes', { body: { match: { keyword: 'two words' }, endpoint_id: ids.shared } })).statusCode, 400);
    assert.equal((await env.req('POST', '/v1/inbound-routes', { token: env.liveKey, body: { match: { owner: 'x' }, endpoint_id: ids.shared } })).statusCode, 400, 'a test-mode endpoint is not the live mode’s');
    const list = (await env.req('GET', '/v1/inbound-routes')).json().data;
    assert.deepEqual(
      list.map((r: { priority: number }) => r.priority),
      [5, 10, 20],
    );
    assert.equal((await env.req('DELETE', `/v1/inbound-routes/${list[0].id}`)).statusCode, 200);
    assert.equal((await env.req('DELETE', `/v1/inbound-routes/${list[0].id}`)).statusCode, 404);
  });
});
