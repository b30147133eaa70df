// A sorted set of strings kept as a list of small sorted chunks, so insert
// and delete cost O(log n + chunk) and a prefix scan costs O(log n + hits):
// the local store's list(prefix) must not get slower as the store grows.

const MAX_CHUNK = 512;

function lowerBound(arr: readonly string[], key: string): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (arr[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class SortedKeys {
  private chunks: string[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Builds the set from keys in any order. */
  static from(keys: Iterable<string>): SortedKeys {
    const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const set = new SortedKeys();
    for (let i = 0; i < sorted.length; i += MAX_CHUNK / 2) set.chunks.push(sorted.slice(i, i + MAX_CHUNK / 2));
    set.count = sorted.length;
    return set;
  }

  /** Index of the first chunk whose last key is >= key (or the last chunk). */
  private chunkFor(key: string): number {
    let lo = 0;
    let hi = this.chunks.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const chunk = this.chunks[mid]!;
      if (chunk[chunk.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  add(key: string): void {
    if (this.chunks.length === 0) {
      this.chunks.push([key]);
      this.count = 1;
      return;
    }
    const ci = this.chunkFor(key);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, key);
    if (chunk[i] === key) return;
    chunk.splice(i, 0, key);
    this.count++;
    if (chunk.length > MAX_CHUNK) this.chunks.splice(ci + 1, 0, chunk.splice(MAX_CHUNK / 2));
  }

  delete(key: string): void {
    if (this.chunks.length === 0) return;
    const ci = this.chunkFor(key);
    const chunk = this.chunks[ci]!;
    const i = lowerBound(chunk, key);
    if (chunk[i] !== key) return;
    chunk.splice(i, 1);
    this.count--;
    if (chunk.length === 0) this.chunks.splice(ci, 1);
  }

  /** The keys starting with prefix, in order. */
  *withPrefix(prefix: string): Generator<string> {
    if (this.chunks.length === 0) return;
    const first = this.chunkFor(prefix);
    for (let ci = first; ci < this.chunks.length; ci++) {
      const chunk = this.chunks[ci]!;
      for (let i = ci === first ? lowerBound(chunk, prefix) : 0; i < chunk.length; i++) {
        if (!chunk[i]!.startsWith(prefix)) return;
        yield chunk[i]!;
      }
    }
  }
}
