// Keywords, keyword replies, contacts linked from inbound messages, conversations and replies
// from the same number. The "done" path of issue 4 for simulator number 16 is the first test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../src/clock.ts';
import { sim, testEnv, type TestEnv } from './helpers.ts';

describe('keywords and the inbox', () => {
  const clock = new ManualClock(Date.parse('2026-01-05T15:00:00Z'));
  let env: TestEnv;
  before(async () => {
    env = await testEnv({ clock });
  });
  after(() => env.close());

  async function settle(rounds = 15) {
    for (let i = 0; i < rounds; i++) {
      await env.p.runDue();
      clock.advance(1000);
    }
    await env.p.runDue();
  }
  const inject = (from: string, body: string, to?: string) => env.req('POST', '/v1/simulator/inbound', { body: { from, body, ...(to ? { to } : {}) } });
  const outboundTo = async (phone: string) => (await env.req('GET', `/v1/messages?direction=outbound&to=${encodeURIComponent(phone)}`)).json().data as Array<Record<string, any>>;
  const submitsTo = async (phone: string) => (await env.p.storage.db.selectFrom('simulator_messages').select('reference').where('to_addr', '=', phone).execute()).length;
  const outbox = async (type: string) =>
    (await env.p.storage.db.selectFrom('outbox').select('payload').where('type', '=', type).orderBy('id').execute()).map((r) => JSON.parse(r.payload).data);

  test('number 16: delivered, STOP arrives, contact.opted_out fires, one confirmation goes out, then OPTED_OUT on every channel; START reverses it', async () => {
    const to = sim(16, '415');
    const first = await env.req('POST', '/v1/messages', { body: { to, body: 'Your order shipped' } });
    assert.equal(first.statusCode, 202);
    const from = first.json().from;
    await settle();
    assert.equal((await env.req('GET', `/v1/messages/${first.json().id}`)).json().status, 'delivered');

    const inbound = (await env.req('GET', `/v1/messages?direction=inbound&from=${encodeURIComponent(to)}`)).json().data;
    assert.ok(inbound.some((m: { body: string }) => m.body === 'STOP'));
    const optedOut = (await outbox('contact.opted_out')).filter((d) => d.phone === to);
    assert.equal(optedOut.length, 1);
    assert.equal(optedOut[0].source, 'keyword');

    const replies = (await outboundTo(to)).filter((m) => m.metadata.keyword_reply);
    assert.equal(replies.length, 1, 'exactly one confirmation');
    assert.equal(replies[0].metadata.keyword_reply, 'opt_out_confirmation');
    assert.equal(replies[0].from, from, 'sent from the number the STOP came to');
    assert.equal(replies[0].status, 'delivered', 'the confirmation reaches the opted-out number');
    assert.match(replies[0].body, /unsubscribed/);

    const submitsBefore = await submitsTo(to);
    for (const channel of ['sms', 'mms', 'voice', 'rvm']) {
      const again = await env.req('POST', '/v1/messages', { body: { to, body: 'again', channel, ...(channel === 'mms' ? { media_urls: ['https://example.com/a.png'] } : {}) } });
      assert.equal(again.statusCode, 422, channel);
      assert.equal(again.json().error.code, 'OPTED_OUT');
    }
    await settle(3);
    assert.equal(await submitsTo(to), submitsBefore, 'no carrier submit after the opt-out');

    await inject(to, 'start', from);
    assert.equal((await outbox('contact.opted_in')).filter((d) => d.phone === to).length, 1);
    const ok = await env.req('POST', '/v1/messages', { body: { to, body: 'welcome back' } });
    assert.equal(ok.statusCode, 202);
    await settle(3);
    assert.equal((await env.req('GET', `/v1/messages/${ok.json().id}`)).json().status, 'delivered');

    const history = (await env.req('GET', `/v1/consent?phone=${encodeURIComponent(to)}`)).json();
    assert.equal(history.suppressed, false);
    assert.deepEqual(history.data.map((r: { status: string; source: string }) => `${r.status}/${r.source}`), ['opted_out/keyword', 'opted_in/keyword']);
    assert.equal(history.data[0].evidence.keyword, 'STOP');
    assert.equal(history.data[0].evidence.message_id, inbound.filter((m: { body: string }) => m.body === 'STOP').at(-1).id);
    assert.ok(history.data[0].created_at <= history.data[1].created_at);
  });

  test('an opt-out landing while a message is queued cancels it before the carrier', async () => {
    const to = sim(3, '415');
    const m = (await env.req('POST', '/v1/messages', { body: { to, body: 'queued' } })).json();
    assert.equal(m.status, 'queued');
    await inject(to, 'Unsubscribe');
    await settle(3);
    const after = (await env.req('GET', `/v1/messages/${m.id}`)).json();
    assert.equal(after.status, 'canceled');
    assert.equal(after.error.class, 'OPTED_OUT');
    const confirmation = (await outboundTo(to)).find((x) => x.metadata.keyword_reply === 'opt_out_confirmation');
    assert.equal(confirmation?.status, 'delivered');
  });

  test('HELP gets the account help text; an opted-out number gets no HELP reply; a second STOP gets no second confirmation', async () => {
    await env.req('PATCH', '/v1/settings/messaging', { body: { keywords: { help_reply: '{account} help: call 555.' } } });
    const to = sim(4, '415');
    await inject(to, 'help');
    await inject(to, 'STOP');
    await inject(to, 'stop');
    await inject(to, 'INFO');
    await settle(3);
    const kinds = (await outboundTo(to)).map((m) => m.metadata.keyword_reply).reverse();
    assert.deepEqual(kinds, ['help', 'opt_out_confirmation']);
    const help = (await outboundTo(to)).find((m) => m.metadata.keyword_reply === 'help');
    assert.equal(help?.body, 'Test account help: call 555.');
  });

  test('a custom keyword opts the sender into a named list, with its reply', async () => {
    const res = await env.req('PATCH', '/v1/settings/messaging', { body: { keywords: { custom: [{ keyword: 'join vip', list: 'vip', reply: 'Welcome to the VIP list!' }] } } });
    assert.equal(res.statusCode, 200, res.body);
    const clash = await env.req('PATCH', '/v1/settings/messaging', { body: { keywords: { custom: [{ keyword: 'STOP', list: 'x', reply: 'no' }] } } });
    assert.equal(clash.statusCode, 400);
    const to = sim(5, '415');
    await inject(to, '  Join   VIP ');
    await settle(3);
    const history = (await env.req('GET', `/v1/consent?phone=${encodeURIComponent(to)}`)).json().data;
    assert.equal(history.length, 1);
    assert.equal(history[0].purpose, 'vip');
    assert.equal(history[0].status, 'opted_in');
    assert.equal(history[0].source, 'keyword');
    const reply = (await outboundTo(to)).find((m) => m.metadata.keyword_reply === 'list_join');
    assert.equal(reply?.body, 'Welcome to the VIP list!');
  });

  test('inbound messages link or create the contact and one conversation per contact and number; replies go from the same number', async () => {
    const phone = sim(6, '415');
    const contact = (await env.req('POST', '/v1/contacts', { body: { phone, name: 'Ada', owner: 'team:sales' } })).json();
    const received = (await inject(phone, 'Is my order ready?')).json();
    await inject(phone, 'Hello?');
    const stranger = sim(7, '415');
    await inject(stranger, 'Who is this?');

    const event = (await outbox('message.received')).find((d) => d.id === received.id);
    assert.equal(event.contact.id, contact.id);
    assert.equal(event.contact.owner, 'team:sales');
    assert.ok(event.conversation_id);

    const created = (await env.req('GET', `/v1/contacts?phone=${encodeURIComponent(stranger)}`)).json().data;
    assert.equal(created.length, 1, 'a contact is created for a new sender');

    const convs = (await env.req('GET', '/v1/conversations?owner=team:sales')).json().data;
    assert.equal(convs.length, 1);
    const conv = convs[0];
    assert.equal(conv.contact.id, contact.id);
    assert.equal(conv.number, received.to);
    assert.equal(conv.last_message.body, 'Hello?');

    clock.advance(1000);
    const reply = await env.req('POST', `/v1/conversations/${conv.id}/messages`, { body: { body: 'Yes, ready for pickup.' } });
    assert.equal(reply.statusCode, 202, reply.body);
    assert.equal(reply.json().from, received.to);
    assert.equal(reply.json().to, phone);
    const msgs = (await env.req('GET', `/v1/conversations/${conv.id}/messages`)).json().data;
    assert.deepEqual(msgs.map((m: { body: string }) => m.body), ['Yes, ready for pickup.', 'Hello?', 'Is my order ready?']);
    const all = (await env.req('GET', '/v1/conversations')).json().data;
    assert.equal(all[0].id, conv.id, 'the reply moved the conversation to the top');
    assert.equal((await env.req('POST', `/v1/conversations/${conv.id}/messages`, { body: { body: 'x', to: stranger } })).statusCode, 400);

    await inject(phone, 'STOP');
    const refused = await env.req('POST', `/v1/conversations/${conv.id}/messages`, { body: { body: 'one more thing' } });
    assert.equal(refused.json().error.code, 'OPTED_OUT');
    const other = await env.key({ scopes: ['messages:read'], mode: 'live' });
    assert.equal((await env.req('GET', `/v1/conversations/${conv.id}`, { token: other })).statusCode, 404, 'live mode never sees test data');
  });

  test('inbound content is stored as plain text: control characters stripped, length capped, markup kept inert', async () => {
    const phone = sim(8, '415');
    const nasty = `<script>alert(1)</script>\u0000\u0007Hi\u202Ethere ${'x'.repeat(3000)}`;
    const m = (await inject(phone, nasty)).json();
    assert.ok(m.body.startsWith('<script>alert(1)</script>Hithere'));
    assert.equal(m.body.length, 1600);
    const res = await env.req('GET', `/v1/messages/${m.id}`);
    assert.match(String(res.headers['content-type']), /application\/json/);
  });
});
