import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestBed, ipJson, run, uniqueName, linkNames } from '../../test/support/harness.js';
import {
  Netlink, createNetns, deleteNetns, listNetns, openNetns, openNetnsByPid, withNetns, readSysctl, writeSysctl, currentNetns,
} from '../../netlink/index.js';
import { StrandError } from '../../common/errors.js';

describe('netlink namespaces', () => {
  const bed = useTestBed();

  it('creates a named namespace that `ip netns` lists and enters, and deletes it', () => {
    const name = uniqueName('n');
    const ns = createNetns(name);
    try {
      assert.ok(run('ip', ['netns', 'list']).stdout.split('\n').some((l) => l.split(' ')[0] === name));
      assert.ok(listNetns().includes(name));
      assert.equal(ns.name, name);
      // A real, separate namespace: only loopback inside, as iproute2 sees it.
      assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], name).map((l) => l.ifname), ['lo']);
      assert.throws(() => createNetns(name), (e: StrandError) => e.code === 'exists' && e.message.includes(`"${name}"`));
    } finally {
      ns.close();
      deleteNetns(name);
    }
    assert.ok(!existsSync(`/run/netns/${name}`));
    assert.ok(!listNetns().includes(name));
    deleteNetns(name); // already gone: still success
  });

  it('opens a namespace by name, by path and by pid, and they are the same namespace', () => {
    const { name, ns } = bed().netns();
    const nl = bed().netlink(ns);
    nl.links.add({ kind: 'bridge', name: 'marker0' });
    const byPath = openNetns(`/run/netns/${name}`);
    bed().defer(() => byPath.close());
    assert.ok(bed().netlink(byPath).links.find('marker0'));

    const child = bed().process(spawn('ip', ['netns', 'exec', name, 'sleep', '30'], { stdio: 'ignore' }));
    // Wait until the child has entered the namespace (it execs sleep there).
    const deadline = Date.now() + 5000;
    let found = false;
    while (Date.now() < deadline && !found) {
      const byPid = openNetnsByPid(child.pid!);
      try {
        found = bed().netlink(byPid).links.find('marker0') !== undefined;
      } finally {
        byPid.close();
      }
    }
    assert.ok(found, 'the namespace of the process holds the marker link');
  });

  it('runs a function inside a namespace and comes back', () => {
    const { ns } = bed().netns();
    const before = readSysctl('net.ipv4.ip_forward');
    const inner = withNetns(ns, () => {
      const nl = Netlink.open();
      try {
        return nl.links.list().map((l) => l.name);
      } finally {
        nl.close();
      }
    });
    assert.deepEqual(inner, ['lo']);
    // Back home: the host's links are visible again.
    const home = bed().netlink();
    assert.ok(home.links.list().length >= 1);
    assert.equal(readSysctl('net.ipv4.ip_forward'), before);
    assert.ok(currentNetns().path.includes('thread-self'));
  });

  it('reads and writes sysctls inside a namespace without touching the host', () => {
    const { name, ns } = bed().netns();
    const hostBefore = readSysctl('net.ipv4.ip_forward');
    writeSysctl('net.ipv4.ip_forward', 1, ns);
    assert.equal(readSysctl('net.ipv4.ip_forward', ns), '1');
    assert.equal(run('ip', ['netns', 'exec', name, 'cat', '/proc/sys/net/ipv4/ip_forward']).stdout.trim(), '1');
    assert.equal(readSysctl('net.ipv4.ip_forward'), hostBefore);
    writeSysctl('net/ipv4/conf/lo/route_localnet', '1', ns);
    assert.equal(run('ip', ['netns', 'exec', name, 'cat', '/proc/sys/net/ipv4/conf/lo/route_localnet']).stdout.trim(), '1');
    assert.throws(() => readSysctl('net.ipv4.no_such_thing', ns), (e: StrandError) => e.code === 'not-found' && e.message.includes('net.ipv4.no_such_thing'));
    assert.throws(() => writeSysctl('../../etc/passwd', 1, ns), (e: StrandError) => e.code === 'invalid');
  });

  it('refuses bad names and paths that are not namespaces, leaving nothing behind', () => {
    for (const bad of ['', 'a/b', 'a b', '.', '..']) {
      assert.throws(() => createNetns(bad), (e: StrandError) => e.code === 'invalid' && e.message.includes('invalid network namespace name'), JSON.stringify(bad));
    }
    const missing = uniqueName('m');
    assert.throws(() => openNetns(missing), (e: StrandError) => e.code === 'not-found' && e.message.includes(missing));
    const dir = bed().tempDir(mkdtempSync(join(tmpdir(), 'strand-ns-')));
    const file = join(dir, 'plain');
    writeFileSync(file, 'not a namespace');
    assert.throws(() => openNetns(file), (e: StrandError) => e.code === 'invalid' && e.message.includes('is not a network namespace'));
    assert.throws(() => openNetnsByPid(-3), (e: StrandError) => e.code === 'invalid');
    assert.ok(!listNetns().some((n) => n.startsWith(missing)));
  });

  it('a namespace deleted while a link lives in it takes the link along', () => {
    const name = uniqueName('d');
    const ns = createNetns(name);
    const host = bed().linkName('h');
    const nl = bed().netlink();
    nl.links.add({ kind: 'veth', name: host, peer: { name: 'inside', netns: ns } });
    ns.close();
    deleteNetns(name);
    // The kernel destroys the namespace once its last reference is gone; the veth pair goes with it.
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && linkNames().includes(host)) run('sleep', ['0.05']);
    assert.ok(!linkNames().includes(host));
  });
});
