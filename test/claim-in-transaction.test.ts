// Regression: the claim transaction must not query outside itself. On SQLite there is a single
// connection; the router reloading its table through storage.db from inside the claim (its cache
// is 2 s old) used to wait on that connection forever. Same for the keyword reply accepted
// inside the inbound transaction.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { sim, testEnv, type TestEnv } from './helpers.ts';

let env: TestEnv;
before(async () => {
  env = await testEnv();
});
after(() => env.close());

const within = <T>(ms: number, p: Promise<T>) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms).unref())]);

test('a claim and a keyword reply after the route cache went stale finish', async () => {
  const res = await env.req('POST', '/v1/messages', { body: { to: sim(1), body: 'x' } });
  assert.equal(res.statusCode, 202);
  await new Promise((r) => setTimeout(r, 2100));
  await within(5000, env.p.runDue());
  assert.notEqual((await env.req('GET', `/v1/messages/${res.json().id}`)).json().status, 'queued');
  await new Promise((r) => setTimeout(r, 2100));
  const stop = await within(5000, env.req('POST', '/v1/simulator/inbound', { body: { from: sim(2), body: 'STOP' } }));
  assert.equal(stop.statusCode, 201);
});
