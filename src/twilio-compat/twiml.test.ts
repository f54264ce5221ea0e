// Messaging TwiML as apps write it, and the answers that must send nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TwimlError, parseTwiml } from './twiml.ts';

test('<Message> with text or <Body>, <Media>, attributes, several messages; other verbs reported', () => {
  const t = parseTwiml(`<?xml version="1.0" encoding="UTF-8"?>
    <Response>
      <Message>Hello &amp; welcome — 5 &lt; 6</Message>
      <Message to="+12025550100" from="+12025550199" statusCallback="https://app.example/s">
        <Body>Part one, </Body><Body>part two</Body>
        <Media>https://app.example/a.png</Media>
        <Media>https://app.example/b.png</Media>
      </Message>
      <Message action="https://app.example/legacy"><Media>https://app.example/c.png</Media></Message>
      <Redirect>https://app.example/next</Redirect>
    </Response>`);
  assert.equal(t.messages.length, 3);
  assert.deepEqual(t.messages[0], { to: null, from: null, body: 'Hello & welcome — 5 < 6', media: [], statusCallback: null });
  assert.deepEqual(t.messages[1], { to: '+12025550100', from: '+12025550199', body: 'Part one,part two', media: ['https://app.example/a.png', 'https://app.example/b.png'], statusCallback: 'https://app.example/s' });
  assert.equal(t.messages[2].body, '');
  assert.equal(t.messages[2].statusCallback, 'https://app.example/legacy');
  assert.deepEqual(t.ignored, ['Redirect']);
});

test('nothing to send: an empty answer, <Response/>, <Response></Response>', () => {
  for (const a of ['', '   ', '<Response/>', '<?xml version="1.0"?><Response></Response>']) assert.deepEqual(parseTwiml(a), { messages: [], ignored: [] });
});

test('refused: malformed XML, another root, a DOCTYPE (entity expansion), more than 10 media', () => {
  const code = (xml: string) => {
    try {
      parseTwiml(xml);
    } catch (err) {
      assert.ok(err instanceof TwimlError);
      return err.code;
    }
    return null;
  };
  assert.equal(code('<Response><Message>open'), 12100);
  assert.equal(code('<Say>hi</Say>'), 12100);
  assert.equal(code('<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><Response><Message>&b;</Message></Response>'), 12100);
  assert.equal(code(`<Response><Message>${'<Media>https://x.example/m.png</Media>'.repeat(11)}</Message></Response>`), 14103);
});
