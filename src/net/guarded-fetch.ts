// Outbound HTTP to URLs that users give (webhooks, status callbacks, media, workflow webhooks),
// guarded against server-side request forgery AT CONNECT TIME: the name is resolved once, every
// address it resolves to is checked (url-policy.ts), and the connection goes to the checked
// address — the socket never resolves the name again, so a DNS answer that changes between the
// check and the connect (rebinding) cannot reach 127.0.0.1, 10.x or 169.254.169.254.
//
// Two ways in, one check:
//   guardedLookup(...) — a `lookup` for node:http/https and net (webhooks/http-sender.ts);
//   guardedFetch(...)  — fetch through an undici Agent whose connect.lookup is the same function,
//                        with a timeout, no redirects followed unless asked (each hop would be
//                        checked again anyway) and the answer's size capped.
// A resolver can be injected (tests point names at 127.0.0.1 without touching DNS).
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { Agent, fetch as undiciFetch, type RequestInit } from 'undici';
import { isPrivateAddress } from './url-policy.ts';

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) =>
  new Promise((resolve, reject) => dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses))));

export interface GuardOptions {
  /** SWITCHBOARD_ALLOW_PRIVATE_URLS: when true, nothing is refused (names still resolve through `resolver`). */
  allowPrivate: boolean;
  resolver?: Resolver;
}

export class PrivateAddressError extends Error {
  readonly code = 'EPRIVATEADDRESS';
  constructor(host: string, address: string) {
    super(`${host} resolves to a private address (${address}); refused unless SWITCHBOARD_ALLOW_PRIVATE_URLS=true`);
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** A dns.lookup-compatible function that refuses names resolving to any non-public address. */
export function guardedLookup(opts: GuardOptions): (hostname: string, options: LookupOptions, callback: LookupCallback) => void {
  const resolver = opts.resolver ?? systemResolver;
  return (hostname, options, callback) => {
    const all = (options as { all?: boolean }).all === true;
    resolver(hostname).then(
      (list) => {
        const wanted = options.family === 4 || options.family === 6 ? list.filter((a) => a.family === options.family) : list;
        if (wanted.length === 0) {
          const e: NodeJS.ErrnoException = new Error(`${hostname} has no address`);
          e.code = 'ENOTFOUND';
          return callback(e, all ? [] : '');
        }
        const bad = opts.allowPrivate ? undefined : wanted.find((a) => isPrivateAddress(a.address));
        if (bad) return callback(new PrivateAddressError(hostname, bad.address), all ? [] : '');
        if (all) return callback(null, wanted);
        callback(null, wanted[0].address, wanted[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, all ? [] : ''),
    );
  };
}

/** For a URL whose host is an IP literal (no lookup happens for those): the same check. */
export function checkLiteralHost(url: URL, opts: GuardOptions): void {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (!opts.allowPrivate && isIP(host) && isPrivateAddress(host)) throw new PrivateAddressError(host, host);
}

export interface GuardedFetchOptions extends GuardOptions {
  timeoutMs?: number;
  /** The answer's body is read up to this many bytes; more is an error. Default 10 MB. */
  maxBytes?: number;
  /** Follow redirects (each hop is checked again at connect time). Default false. */
  followRedirects?: boolean;
}

export interface GuardedResponse {
  status: number;
  headers: Headers;
  body: Buffer;
}

const agents = new WeakMap<Resolver | typeof systemResolver, Map<boolean, Agent>>();

function agentFor(opts: GuardOptions): Agent {
  const resolver = opts.resolver ?? systemResolver;
  let byPolicy = agents.get(resolver);
  if (!byPolicy) agents.set(resolver, (byPolicy = new Map()));
  let agent = byPolicy.get(opts.allowPrivate);
  if (!agent) {
    agent = new Agent({ connect: { lookup: guardedLookup(opts) as never }, connections: 64 });
    byPolicy.set(opts.allowPrivate, agent);
  }
  return agent;
}

/**
 * fetch() for a user-given URL: http(s) only, private addresses refused at connect time, a hard
 * timeout, the body capped. Throws on a refused address, a timeout or an oversized body.
 */
export async function guardedFetch(input: string, init: RequestInit = {}, opts: GuardedFetchOptions): Promise<GuardedResponse> {
  const url = new URL(input);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${url.protocol} URLs are not fetched`);
  checkLiteralHost(url, opts);
  const signal = AbortSignal.timeout(opts.timeoutMs ?? 10_000);
  const res = await undiciFetch(url, { ...init, signal, redirect: opts.followRedirects ? 'follow' : 'manual', dispatcher: agentFor(opts) });
  const max = opts.maxBytes ?? 10 * 1024 * 1024;
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body) {
      size += chunk.length;
      if (size > max) {
        await res.body.cancel().catch(() => {});
        throw new Error(`the answer from ${url.host} is larger than ${max} bytes`);
      }
      chunks.push(Buffer.from(chunk));
    }
  }
  return { status: res.status, headers: res.headers as unknown as Headers, body: Buffer.concat(chunks) };
}
