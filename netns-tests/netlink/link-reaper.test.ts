import assert from 'node:assert/strict';
import { useTestBed, ipJson } from '../../test/support/harness.js';
import { LinkReaper } from '../../netlink/link-reaper.js';

describe('netlink link reaper (deletions on a worker thread)', () => {
  const bed = useTestBed();

  function nsWithVeths(count: number) {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    for (let i = 0; i < count; i++) nl.links.add({ kind: 'veth', name: `va${i}`, peer: { name: `vb${i}` } });
    const reaper = new LinkReaper(`/run/netns/${name}`);
    bed().defer(() => reaper.close());
    return { name, reaper };
  }

  const names = (netns: string) => ipJson<{ ifname: string }>(['link', 'show'], netns).map((l) => l.ifname).sort();

  it('removes every link it is given, both ends of a veth, whether asked together or one after another', async () => {
    const { name, reaper } = nsWithVeths(24);
    const first = reaper.delete('va0');
    await Promise.all([first, ...Array.from({ length: 23 }, (_, i) => reaper.delete(`va${i + 1}`))]);
    assert.deepEqual(names(name), ['lo']);
  });

  it('answers the same promise for a name already queued, and counts a missing link as gone', async () => {
    const { name, reaper } = nsWithVeths(2);
    const a = reaper.delete('va0');
    assert.equal(reaper.delete('va0'), a);
    await a;
    await reaper.delete('no-such-link');
    await reaper.settled('va0');
    assert.deepEqual(names(name), ['lo', 'va1', 'vb1']);
  });

  it('fails only the bad name of a batch, with the reason, and keeps serving', async () => {
    const { name, reaper } = nsWithVeths(3);
    const results = await Promise.allSettled([reaper.delete('va0'), reaper.delete('a-name-far-too-long-for-a-link'), reaper.delete('va1')]);
    assert.equal(results[0]!.status, 'fulfilled');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.equal(results[1]!.status, 'rejected');
    assert.match(String((results[1] as PromiseRejectedResult).reason), /a-name-far-too-long-for-a-link/);
    await reaper.delete('va2');
    assert.deepEqual(names(name), ['lo']);
  });

  it('drain waits for every deletion asked for', async () => {
    const { name, reaper } = nsWithVeths(10);
    for (let i = 0; i < 10; i++) void reaper.delete(`va${i}`);
    await reaper.drain();
    assert.deepEqual(names(name), ['lo']);
  });
});
