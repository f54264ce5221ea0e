// SIDs are our ids in hex: both ways, for every kind, keeping the order of the ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { newId } from '../ids.ts';
import { idOf, newAccountSid, sidOf } from './sids.ts';

test('every id maps to a 34-character SID and back; the order of ids is the order of SIDs', () => {
  const ids = Array.from({ length: 200 }, (_, i) => newId('msg', Date.parse('2026-01-01T00:00:00Z') + (i % 7)));
  const sids = ids.map((id) => sidOf(id));
  for (const [i, sid] of sids.entries()) {
    assert.match(sid, /^SM[0-9a-f]{32}$/);
    assert.equal(idOf(sid, 'msg'), ids[i]);
    assert.equal(idOf(`MM${sid.slice(2)}`, 'msg', ['SM', 'MM']), ids[i]);
  }
  assert.deepEqual([...sids].sort(), sids.slice().sort((a, b) => (idOf(a, 'msg')! < idOf(b, 'msg')! ? -1 : 1)));
  for (const [kind, letters] of [['pool', 'MG'], ['sender', 'PN'], ['tpl', 'HX'], ['key', 'SK']] as const) {
    const id = newId(kind);
    const sid = sidOf(id);
    assert.ok(sid.startsWith(letters), sid);
    assert.equal(idOf(sid, kind), id);
  }
});

test('malformed SIDs, and SIDs of another kind, map to nothing', () => {
  const sid = sidOf(newId('msg'));
  for (const bad of [sid.toLowerCase(), sid.slice(0, 33), `${sid}0`, `SM${'g'.repeat(32)}`, `MG${sid.slice(2)}`, 42, null, undefined]) assert.equal(idOf(bad, 'msg'), null, String(bad));
  assert.match(newAccountSid(), /^AC[0-9a-f]{32}$/);
  assert.notEqual(newAccountSid(), newAccountSid());
});
