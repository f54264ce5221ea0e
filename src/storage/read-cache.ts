// Short-lived caches of configuration that the send path reads on every request (an account's
// default sender, its messaging settings). Each entry lives `ttlMs` (one second by default);
// a write made through this process clears every cache of its storage at once
// (`configChanged`), and a write made by another process is seen within the TTL. Per-recipient
// state (consent, suppressions) and credentials are never cached here: they must be exact.
import type { Storage } from './database.ts';

export class ReadCache<V> {
  private entries = new Map<string, { at: number; value: Promise<V> }>();

  constructor(
    private ttlMs = 1000,
    private max = 10_000,
  ) {}

  /** The cached value, or `load()`'s (concurrent callers share one load; a failure is not kept). */
  get(key: string, load: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < this.ttlMs && now >= hit.at) return hit.value;
    if (this.entries.size >= this.max) this.entries.clear();
    const value = load();
    const entry = { at: now, value };
    this.entries.set(key, entry);
    value.catch(() => {
      if (this.entries.get(key) === entry) this.entries.delete(key);
    });
    return value;
  }

  clear(): void {
    this.entries.clear();
  }
}

const caches = new WeakMap<Storage, Set<ReadCache<unknown>>>();

/** A cache cleared whenever this process changes configuration in `storage`. */
export function readCache<V>(storage: Storage, ttlMs?: number): ReadCache<V> {
  const cache = new ReadCache<V>(ttlMs);
  let set = caches.get(storage);
  if (!set) caches.set(storage, (set = new Set()));
  set.add(cache as ReadCache<unknown>);
  return cache;
}

/** Call after writing configuration (senders, settings): this process's caches forget it. */
export function configChanged(storage: Storage): void {
  for (const cache of caches.get(storage) ?? []) cache.clear();
}
