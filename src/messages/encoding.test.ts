// The fast count for plain GSM text must agree with sms-segments-calculator everywhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { analyseText, analyseWithLibrary } from './encoding.ts';

const ALPHABETS = [
  'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?-()',
  'abc @£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ!"#¤%&\'*+/<=>¡ÄÖÑÜ§¿äöñüà\n',
  'abc {}[]~|^€\\',
  'abc áíóú ç ł 😀 مرحبا 你好 \r\n',
];

test('fast path and library agree on encoding and segments (4,000 random texts)', () => {
  let seed = 42;
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let i = 0; i < 4000; i++) {
    const alphabet = [...ALPHABETS[i % ALPHABETS.length]];
    const len = [1, 70, 71, 150, 159, 160, 161, 306, 307, 459, 460, 600][i % 12] + Math.floor(rand() * 3);
    let text = '';
    while ([...text].length < len) text += alphabet[Math.floor(rand() * alphabet.length)];
    const fast = analyseText(text);
    const lib = analyseWithLibrary(text);
    assert.equal(fast.encoding, lib.encoding, JSON.stringify(text));
    assert.equal(fast.segments, lib.segments, `${text.length} chars: ${JSON.stringify(text.slice(0, 40))}`);
  }
});

test('known values', () => {
  assert.deepEqual(analyseText('hello'), { encoding: 'GSM-7', segments: 1, nonGsmCharacters: [] });
  assert.equal(analyseText('x'.repeat(160)).segments, 1);
  assert.equal(analyseText('x'.repeat(161)).segments, 2);
  assert.equal(analyseText('€'.repeat(80)).segments, 1);
  assert.equal(analyseText('€'.repeat(81)).segments, 2);
  assert.equal(analyseText('😀').encoding, 'UCS-2');
  assert.equal(analyseText('a'.repeat(70) + 'é').encoding, 'GSM-7');
  assert.equal(analyseText('ą'.repeat(71)).segments, 2);
});
