// Routing by what a connector can carry and by sender: an MMS never goes to an SMPP bind; when no
// route carries media it is refused, or — only if the account allows it — sent as SMS with its
// media links (decided at accept, and again at claim when the route table changed). Routes
// filtered by sender take the messages from that sender. Real SMSC on 127.0.0.1 (test/smsc.ts).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DEFAULT_ROUTE_ID } from '../src/accounts/account-service.ts';
import { eventually, sim, testEnv, type TestEnv } from './helpers.ts';
import { TestSmsc } from './smsc.ts';

describe('MMS fallback and sender filters', () => {
  const smsc = new TestSmsc({ receiptDelayMs: 10 });
  let env: TestEnv;
  let smppId: string;
  let mediaId: string;
  let mediaRoute: string;
  const live = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => env.req(method, url, { token: env.liveKey, body });
  const count = async () => Number((await env.p.storage.db.selectFrom('messages').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  const settle = (id: string, statuses: string[]) =>
    eventually(
      async () => {
        await env.p.runDue();
        const m = (await live('GET', `/v1/messages/${id}`)).json();
        return statuses.includes(m.status) && m;
      },
      10_000,
      `${id} in ${statuses.join('/')}`,
    );

  before(async () => {
    await smsc.start();
    env = await testEnv();
    // Live traffic here goes only where these tests route it: no catch-all simulator route.
    await env.p.storage.db.deleteFrom('routes').where('id', '=', DEFAULT_ROUTE_ID).execute();
    const smpp = await live('POST', '/v1/connectors', {
      name: 'SMSC',
      type: 'smpp',
      config: { host: '127.0.0.1', port: smsc.port, system_id: smsc.systemId, password: smsc.password, response_timeout_ms: 2000, reconnect_min_ms: 50, reconnect_max_ms: 300 },
    });
    assert.equal(smpp.statusCode, 201, smpp.body);
    smppId = smpp.json().id;
    assert.equal((await live('POST', '/v1/routes', { priority: 10, filters: { prefix: '+1415' }, connector_id: smppId })).statusCode, 201);
    // A connector that carries media (a simulator in live mode), for +1646 only.
    mediaId = (await live('POST', '/v1/connectors', { name: 'Media carrier', type: 'simulator' })).json().id;
    mediaRoute = (await live('POST', '/v1/routes', { priority: 20, filters: { prefix: ['+1415', '+1646'], channel: 'mms' }, connector_id: mediaId })).json().id;
  });
  after(async () => {
    await env.close();
    await smsc.stop();
  });

  const mms = { channel: 'mms', body: 'Your receipt', media_urls: ['https://example.com/r/1.jpg', 'https://example.com/r/2.jpg'] };

  test('an MMS skips a route that cannot carry media for one that can', async () => {
    const res = await live('POST', '/v1/messages', { to: sim(1, '415'), ...mms });
    assert.equal(res.statusCode, 202, res.body);
    assert.equal(res.json().channel, 'mms');
    const m = await settle(res.json().id, ['sent', 'delivered']);
    assert.equal(m.connector_id, mediaId, 'the SMPP route comes first but cannot carry media');
  });

  test('with no route that carries media, an MMS is refused unless the account allows SMS with links', async () => {
    assert.equal((await live('DELETE', `/v1/routes/${mediaRoute}`)).statusCode, 200);
    const before = await count();
    const refused = await live('POST', '/v1/messages', { to: sim(2, '415'), ...mms });
    assert.equal(refused.statusCode, 422, refused.body);
    const error = refused.json().error;
    assert.equal(error.code, 'FILTERED');
    assert.equal(error.details.reason, 'mms_not_supported');
    assert.match(error.message, /mms_fallback_to_sms_link/);
    assert.equal(await count(), before, 'nothing written');

    const settings = await live('PATCH', '/v1/settings/messaging', { mms_fallback_to_sms_link: true });
    assert.equal(settings.statusCode, 200, settings.body);
    assert.equal(settings.json().mms_fallback_to_sms_link, true);
    assert.equal((await live('PATCH', '/v1/settings/messaging', { mms_fallback_to_sms_link: 'yes' })).statusCode, 400);

    const res = await live('POST', '/v1/messages', { to: sim(2, '415'), ...mms });
    assert.equal(res.statusCode, 202, res.body);
    const accepted = res.json();
    assert.equal(accepted.channel, 'sms');
    assert.equal(accepted.body, 'Your receipt\nhttps://example.com/r/1.jpg\nhttps://example.com/r/2.jpg');
    assert.equal(accepted.segments, 1);
    const events = (await live('GET', `/v1/messages/${accepted.id}/events`)).json().data;
    assert.deepEqual(events[0].data.mms_fallback, { channel: 'sms', reason: 'no_route_carries_media', media_urls: mms.media_urls });
    const sent = await settle(accepted.id, ['delivered']);
    assert.equal(sent.connector_id, smppId);
    const atSmsc = smsc.messages.find((x) => x.to === sim(2, '415').slice(1));
    assert.equal(atSmsc?.text, accepted.body, 'the SMSC got the text with the links');

    // Links that push the text past the segment limit: refused, not truncated.
    const long = await live('POST', '/v1/messages', { to: sim(3, '415'), channel: 'mms', body: 'x'.repeat(1500), media_urls: Array.from({ length: 10 }, (_, i) => `https://example.com/${'m'.repeat(60)}/${i}.jpg`) });
    assert.equal(long.statusCode, 422, long.body);
    assert.equal(long.json().error.details.reason, 'mms_not_supported');
    await live('PATCH', '/v1/settings/messaging', { mms_fallback_to_sms_link: false });
  });

  test('the route table changes between accept and claim: refused MMS fails, allowed MMS goes as SMS', async () => {
    const route = (await live('POST', '/v1/routes', { priority: 20, filters: { prefix: '+1415', channel: 'mms' }, connector_id: mediaId })).json().id;
    const first = (await live('POST', '/v1/messages', { to: sim(4, '415'), ...mms })).json();
    const second = (await live('POST', '/v1/messages', { to: sim(5, '415'), ...mms, send_at: new Date(Date.now() + 1500).toISOString() })).json();
    assert.equal(first.channel, 'mms');
    assert.equal(first.status, 'queued');
    assert.equal(second.status, 'scheduled');
    await live('DELETE', `/v1/routes/${route}`);
    env.p.router.invalidate();

    const failed = await settle(first.id, ['failed']);
    assert.equal(failed.error.class, 'FILTERED');
    assert.equal(failed.error.code, 'MMS_NOT_SUPPORTED');
    assert.equal(smsc.messages.filter((x) => x.to === sim(4, '415').slice(1)).length, 0);

    await live('PATCH', '/v1/settings/messaging', { mms_fallback_to_sms_link: true });
    const converted = await settle(second.id, ['delivered']);
    assert.equal(converted.channel, 'sms');
    assert.equal(converted.connector_id, smppId);
    assert.equal(converted.body, `Your receipt\n${mms.media_urls.join('\n')}`);
    const events = (await live('GET', `/v1/messages/${second.id}/events`)).json().data;
    assert.ok(events.some((e: { status: string; data: Record<string, unknown> }) => e.status === 'sending' && e.data.mms_fallback), 'the fallback is on the sending event');
    await live('PATCH', '/v1/settings/messaging', { mms_fallback_to_sms_link: false });
  });

  test('routes filtered by sender carry that sender’s messages', async () => {
    const sender = await live('POST', '/v1/senders', { address: '+1 (415) 555-0177', connector_id: mediaId });
    assert.equal(sender.statusCode, 201, sender.body);
    const bad = await live('POST', '/v1/routes', { priority: 5, filters: { sender: 'not a sender!' }, connector_id: mediaId });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.details.field, 'filters.sender');
    const route = await live('POST', '/v1/routes', { priority: 5, filters: { sender: ['(415) 555-0177', 'ACME'] }, connector_id: mediaId });
    assert.equal(route.statusCode, 201, route.body);
    assert.deepEqual(route.json().filters.sender, ['+14155550177', 'ACME']);

    const fromIt = (await live('POST', '/v1/messages', { to: sim(6, '415'), body: 'from the filtered sender', from: '+14155550177' })).json();
    const fromDefault = (await live('POST', '/v1/messages', { to: sim(7, '415'), body: 'from the default sender' })).json();
    assert.equal((await settle(fromIt.id, ['sent', 'delivered'])).connector_id, mediaId);
    assert.equal((await settle(fromDefault.id, ['sent', 'delivered'])).connector_id, smppId);
    assert.equal((await live('DELETE', `/v1/routes/${route.json().id}`)).statusCode, 200);
  });
});
