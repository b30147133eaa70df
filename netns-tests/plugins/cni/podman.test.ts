// Proof with a real runtime: Debian's podman 4.3 with its CNI backend runs
// containers on strand-bridge + strand-ipam networks. Podman itself runs
// inside the test's "host" namespace (nsenter --net: only the network
// namespace changes, so the netns files podman makes stay visible), with a
// private storage root, its plugin dir holding `strand cni install`'s
// executables (plus the reference portmap) behind shims that log every verb,
// and its config dir holding only the test's conflists. The image is
// busybox-static imported from a tarball: no registry is ever asked.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipJson, run, uniqueName, useTestBed, type TestBed } from '../../../test/support/harness.js';
import { HOST_OUT, World } from '../../../test/support/topology.js';
import { installPlugins } from '../../../plugins/cni/install.js';
import { REFERENCE_DIR, startDaemon } from './plugin-bin.js';
import { runConflist, type Conflist } from '../../../test/support/cni-runtime.js';
import { heldAddresses } from './ipam-view.js';

const BUSYBOX = '/bin/busybox';
const IMAGE = 'localhost/strand-busybox:test';
/** libcni's result cache; podman 4.3 has no setting for it. */
const CNI_CACHE = '/var/lib/cni';
/** This machine's limits make podman's defaults fail without these. */
const ULIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];
const APPLETS = ['sh', 'wget', 'nc', 'ip', 'ping', 'httpd', 'cat', 'sleep', 'hostname', 'ifconfig', 'true'];

interface VerbCall {
  plugin: string;
  verb: string;
  containerId: string;
  rc: number;
}

/** One podman installation of the test's own: storage, plugins, networks, all under one temp dir. */
class Podman {
  readonly dir: string;
  readonly bin: string;
  readonly netDir: string;
  readonly store: string;
  readonly runDir: string;
  private readonly requireDaemon: string;
  private readonly log: string;
  private readonly env: Record<string, string>;
  private readonly global: string[];

  constructor(
    private readonly bed: TestBed,
    readonly world: World,
  ) {
    this.dir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-podman-')));
    this.bin = join(this.dir, 'bin');
    this.netDir = join(this.dir, 'net.d');
    this.store = `local://${join(this.dir, 'store')}`;
    this.log = join(this.dir, 'verbs.log');
    this.runDir = join(this.dir, 'strand');
    this.requireDaemon = join(this.dir, 'require-daemon');
    for (const d of [this.bin, this.netDir, join(this.dir, 'strand'), join(this.dir, 'tmp')]) mkdirSync(d, { recursive: true });
    const conf = join(this.dir, 'containers.conf');
    // What podman 4.3 reads for the CNI backend: network_backend, cni_plugin_dirs, network_config_dir.
    writeFileSync(conf, `[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = ["${this.bin}"]\nnetwork_config_dir = "${this.netDir}"\n`);
    this.env = { ...(process.env as Record<string, string>), CONTAINERS_CONF: conf };
    this.global = [
      '--network-backend', 'cni',
      '--network-config-dir', this.netDir,
      '--root', join(this.dir, 'root'),
      '--runroot', join(this.dir, 'runroot'),
      '--tmpdir', join(this.dir, 'tmp'),
      '--storage-driver', 'vfs',
      '--cgroup-manager', 'cgroupfs',
      '--events-backend', 'none',
      // crun refuses this machine's hybrid cgroup layout ("cgroups in hybrid mode not supported").
      '--runtime', 'runc',
    ];
    // Whatever a test leaves, podman removes it: its containers (so every DEL runs while the host
    // namespace still exists), the image, mounts under the root, libcni cache entries of our networks.
    bed.defer(() => this.teardown());
  }

  /** strand's plugins as `strand cni install` writes them, the reference portmap, each behind a verb-logging shim. */
  async install(): Promise<void> {
    const real = join(this.dir, 'real');
    await installPlugins(real);
    copyFileSync(join(REFERENCE_DIR, 'portmap'), join(real, 'portmap'));
    chmodSync(join(real, 'portmap'), 0o755);
    const storeDir = this.store;
    for (const name of ['strand-bridge', 'strand-ipam', 'strand-macvlan', 'portmap']) {
      const shim = join(this.bin, name);
      writeFileSync(
        shim,
        [
          '#!/bin/sh',
          `export STRAND_STORE=${storeDir} STRAND_RUN_DIR=${this.runDir}`,
          // While the test says so, the front must reach strand daemon (it fails instead of doing the work itself).
          `[ -e ${this.requireDaemon} ] && export STRAND_CNI_REQUIRE_DAEMON=1`,
          // Podman already runs in the host namespace; the test's own CHECK calls come from the root one.
          `nsenter --net=/run/netns/${this.world.host.name} ${join(real, name)}`,
          'rc=$?',
          `echo "${name} $CNI_COMMAND $CNI_CONTAINERID $rc" >> ${this.log}`,
          'exit $rc',
          '',
        ].join('\n'),
      );
      chmodSync(shim, 0o755);
    }
  }

  /** An image holding busybox-static as /bin/busybox and its applets as symlinks. */
  importImage(): void {
    const root = join(this.dir, 'image');
    mkdirSync(join(root, 'bin'), { recursive: true });
    mkdirSync(join(root, 'etc'));
    copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
    chmodSync(join(root, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
    const tar = join(this.dir, 'image.tar');
    run('tar', ['-C', root, '-cf', tar, '.']);
    this.podman(['import', tar, IMAGE]);
  }

  network(list: Conflist): void {
    writeFileSync(join(this.netDir, `${list.name}.conflist`), JSON.stringify(list, null, 1));
  }

  podman(args: string[], options: { allowFail?: boolean } = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync('nsenter', [`--net=/run/netns/${this.world.host.name}`, 'podman', ...this.global, ...args], { encoding: 'utf8', env: this.env, timeout: 90000 });
    if (r.error) throw r.error;
    const out = { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    if (out.status !== 0 && !options.allowFail) throw new Error(`podman ${args.join(' ')} failed (${out.status}): ${out.stderr.trim()}`);
    return out;
  }

  /** Runs IMAGE with the machine's ulimits on `network`. */
  runCtr(network: string, extra: string[], cmd: string[]): string {
    return this.podman(['run', ...ULIMITS, '--network', network, ...extra, IMAGE, ...cmd]).stdout;
  }

  inspect(name: string, format: string): string {
    return this.podman(['inspect', name, '--format', format]).stdout.trim();
  }

  verbs(): VerbCall[] {
    if (!existsSync(this.log)) return [];
    return readFileSync(this.log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [plugin, verb, containerId, rc] = l.split(' ') as [string, string, string, string];
        return { plugin, verb, containerId, rc: Number(rc) };
      });
  }

  /** `strand daemon` in the host namespace with this installation's store and run dir; every strand verb must go to it. */
  async serveByDaemon(): Promise<void> {
    await startDaemon(this.bed, this.world.host.name, { STRAND_STORE: this.store, STRAND_RUN_DIR: this.runDir });
    writeFileSync(this.requireDaemon, '');
  }

  private teardown(): void {
    // The daemon is stopped by now (it started after this was registered): let the plugins work alone.
    rmSync(this.requireDaemon, { force: true });
    this.podman(['rm', '--all', '--force', '--time', '0'], { allowFail: true });
    this.podman(['rmi', '--all', '--force'], { allowFail: true });
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(this.dir + '/'))
      .reverse();
    for (const m of mounts) run('umount', ['-l', m], { allowFail: true });
    for (const net of readdirSync(this.netDir).filter((f) => f.endsWith('.conflist')).map((f) => f.slice(0, -'.conflist'.length))) {
      for (const f of cacheFiles(net)) run('rm', ['-f', join(CNI_CACHE, 'results', f)]);
    }
  }
}

/** libcni cache entries of a network (podman writes them for every ADD, removes them on DEL). */
function cacheFiles(network: string): string[] {
  try {
    return readdirSync(join(CNI_CACHE, 'results')).filter((f) => f.startsWith(`${network}-`));
  } catch {
    return [];
  }
}

function strandNet(name: string, bridge: string, subnet: string, version: string, ports: 'portmap' | 'strand'): Conflist {
  const main: Record<string, unknown> = {
    type: 'strand-bridge',
    bridge,
    isGateway: true,
    isDefaultGateway: true,
    ipMasq: true,
    ipam: { type: 'strand-ipam', ranges: [[{ subnet }]] },
  };
  if (ports === 'strand') main.capabilities = { portMappings: true };
  const plugins = ports === 'portmap' ? [main, { type: 'portmap', capabilities: { portMappings: true } }] : [main];
  return { cniVersion: version, name, plugins };
}

function subnetAddress(text: string, prefix: string): string | undefined {
  const m = new RegExp(`inet (${prefix.replace(/\./g, '\\.')}\\d+)/24`).exec(text);
  return m?.[1];
}

/** An HTTP GET from namespace `ns` with curl, retried while the server starts; the body, or null. */
async function fetchFrom(ns: string, url: string, tries = 15): Promise<string | null> {
  for (let i = 0; i < tries; i++) {
    const r = run('ip', ['netns', 'exec', ns, 'curl', '-s', '--max-time', '2', url], { allowFail: true });
    if (r.status === 0) return r.stdout;
    await new Promise((res) => setTimeout(res, 200));
  }
  return null;
}

/** The links on the bridge: none when the bridge is gone too (it goes with the network's last attachment on the host). */
function bridgePorts(world: World, bridge: string): string[] {
  return ipJson<{ ifname: string; master?: string }>(['link', 'show'], world.host.name)
    .filter((l) => l.master === bridge)
    .map((l) => l.ifname);
}

function hostLinks(world: World): string[] {
  return ipJson<{ ifname: string }>(['link', 'show'], world.host.name).map((l) => l.ifname);
}

function saveRules(world: World): string {
  return run('ip', ['netns', 'exec', world.host.name, 'iptables-save']).stdout;
}

async function setup(bed: TestBed): Promise<Podman> {
  for (const [what, file] of [['podman', '/usr/bin/podman'], ['busybox-static', BUSYBOX], ['runc', '/usr/bin/runc']] as const) {
    assert.ok(existsSync(file), `${what} is not installed (${file}); scripts/setup.sh installs it`);
  }
  const world = new World(bed);
  const p = new Podman(bed, world);
  await p.install();
  p.importImage();
  return p;
}

describe('podman (CNI backend) on strand-bridge + strand-ipam', function () {
  this.timeout(180000);
  const bed = useTestBed();

  it('sees the networks; a container gets a strand address; its ADD and DEL leave nothing behind', async () => {
    const p = await setup(bed());
    const net = uniqueName('n');
    const bridge = uniqueName('b');
    p.network(strandNet(net, bridge, '10.97.10.0/24', '1.0.0', 'portmap'));

    const nets = JSON.parse(p.podman(['network', 'ls', '--format', 'json']).stdout) as { name: string; driver: string }[];
    assert.equal(nets.find((n) => n.name === net)?.driver, 'strand-bridge', `podman network ls: ${JSON.stringify(nets)}`);

    const out = p.runCtr(net, ['--rm'], ['ip', '-4', 'addr', 'show', 'dev', 'eth0']);
    const addr = subnetAddress(out, '10.97.10.');
    assert.ok(addr, `the container has no 10.97.10.0/24 address on eth0:\n${out}`);
    assert.notEqual(addr, '10.97.10.1', 'the gateway is not handed to a container');

    // --rm: the network was torn down. Read the kernel, the store and libcni's cache independently.
    assert.deepEqual(bridgePorts(p.world, bridge), [], 'no veth left on the bridge');
    assert.ok(!hostLinks(p.world).includes(bridge), 'the bridge went with the network\'s last attachment');
    assert.deepEqual(await heldAddresses(p.store, net), [], 'no address left allocated');
    assert.deepEqual(cacheFiles(net), [], 'no libcni cache entry left');
    // Podman 4.3 asks every plugin VERSION before ADD and DEL (libcni's version check), then runs
    // the chain forward on ADD and backward on DEL; strand-ipam runs inside strand-bridge.
    const calls = p.verbs();
    assert.ok(calls.every((c) => c.rc === 0), JSON.stringify(calls));
    assert.deepEqual(new Set(calls.filter((c) => c.verb === 'VERSION').map((c) => c.plugin)), new Set(['strand-bridge', 'portmap']));
    assert.deepEqual(
      calls.filter((c) => c.verb !== 'VERSION').map((c) => `${c.plugin} ${c.verb}`),
      ['strand-bridge ADD', 'portmap ADD', 'portmap DEL', 'strand-bridge DEL'],
    );
    assert.deepEqual(new Set(calls.map((c) => c.verb)), new Set(['VERSION', 'ADD', 'DEL']), 'the verbs podman uses');
  });

  it('two containers talk; ports published by the reference portmap reach a container from the host and outside; stop, start and rm each leave the right state', async () => {
    const p = await setup(bed());
    const net = uniqueName('n');
    const bridge = uniqueName('b');
    // 0.4.0, as podman's own 87-podman-bridge.conflist: strand-bridge's result is converted for portmap.
    const list = strandNet(net, bridge, '10.97.11.0/24', '0.4.0', 'portmap');
    p.network(list);

    const id = p.runCtr(net, ['-d', '--name', 'srv', '--hostname', 'strandsrv', '-p', '127.0.0.1:18081:80', '-p', '18082:80'], ['httpd', '-f', '-p', '80', '-h', '/']).trim();
    const ip = p.inspect('srv', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    assert.match(ip, /^10\.97\.11\.\d+$/);
    const sandbox = p.inspect('srv', '{{.NetworkSettings.SandboxKey}}');
    assert.ok(ipJson<{ addr_info: { local: string }[] }>(['addr', 'show', 'dev', 'eth0'], sandbox.replace('/run/netns/', ''))[0]!.addr_info.some((a) => a.local === ip), 'the kernel has the address podman reports');
    assert.equal(bridgePorts(p.world, bridge).length, 1);

    // Container to container, by address, across the strand bridge.
    const got = p.runCtr(net, ['--rm'], ['sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://${ip}/etc/hostname && exit 0; sleep 0.3; done; exit 1`]);
    assert.equal(got.trim(), 'strandsrv');
    // -p 127.0.0.1:18081:80 from the host namespace's loopback; -p 18082:80 from the outside namespace.
    assert.equal((await fetchFrom(p.world.host.name, 'http://127.0.0.1:18081/etc/hostname'))?.trim(), 'strandsrv');
    assert.equal((await fetchFrom(p.world.outside.name, `http://${HOST_OUT}:18082/etc/hostname`))?.trim(), 'strandsrv');
    assert.equal(await fetchFrom(p.world.outside.name, `http://${HOST_OUT}:18081/etc/hostname`, 1), null, 'a port published on 127.0.0.1 only is not reachable from outside');

    // Podman 4.3 never sends CHECK; run it on podman's own cached ADD result, through the same plugins.
    const check = { verb: 'CHECK' as const, containerId: id, netns: sandbox, ifName: 'eth0', path: [p.bin], cacheDir: CNI_CACHE, maxVersion: '1.0.0' };
    await runConflist({ ...list, plugins: [list.plugins[0]!] }, check);
    run('ip', ['-n', sandbox.replace('/run/netns/', ''), 'addr', 'flush', 'dev', 'eth0']);
    await assert.rejects(runConflist({ ...list, plugins: [list.plugins[0]!] }, check), /address 10\.97\.11\.\d+\/24 is missing/);
    run('ip', ['-n', sandbox.replace('/run/netns/', ''), 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);

    // stop → DEL: no veth, no address, no port rule, no cache entry, no netns file.
    p.podman(['stop', '--time', '0', 'srv']);
    assert.deepEqual(bridgePorts(p.world, bridge), []);
    assert.deepEqual(await heldAddresses(p.store, net), []);
    assert.doesNotMatch(saveRules(p.world), /18081|18082/);
    assert.deepEqual(cacheFiles(net), []);
    assert.ok(!existsSync(sandbox), `${sandbox} is gone`);

    // start → ADD again, reachable again.
    p.podman(['start', 'srv']);
    const ip2 = p.inspect('srv', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    assert.deepEqual((await heldAddresses(p.store, net)).map((h) => [h.address, h.containerId, h.ifName]), [[ip2, id, 'eth0']]);
    assert.equal((await fetchFrom(p.world.host.name, 'http://127.0.0.1:18081/etc/hostname'))?.trim(), 'strandsrv');

    // rm -f → DEL of the running container.
    p.podman(['rm', '--force', '--time', '0', 'srv']);
    assert.deepEqual(bridgePorts(p.world, bridge), []);
    assert.deepEqual(await heldAddresses(p.store, net), []);
    const rules = saveRules(p.world);
    assert.doesNotMatch(rules, /18081|18082/);
    assert.doesNotMatch(rules, new RegExp(id), 'no portmap chain of the container');
    assert.deepEqual(cacheFiles(net), []);

    const mine = p.verbs().filter((c) => c.containerId === id && c.verb !== 'VERSION');
    assert.deepEqual(
      mine.filter((c) => c.plugin === 'strand-bridge').map((c) => `${c.verb} ${c.rc}`),
      ['ADD 0', 'CHECK 0', 'CHECK 1', 'DEL 0', 'ADD 0', 'DEL 0'],
      'strand-bridge saw ADD, our two CHECKs (the second failing), DEL on stop, ADD on start, DEL on rm',
    );
    assert.deepEqual(mine.filter((c) => c.plugin === 'portmap').map((c) => `${c.verb} ${c.rc}`), ['ADD 0', 'DEL 0', 'ADD 0', 'DEL 0']);
  });

  for (const daemon of [false, true]) it(`publishes ports with strand-bridge's own portMappings capability (no portmap in the chain)${daemon ? ', every verb served by strand daemon' : ''}`, async () => {
    const p = await setup(bed());
    if (daemon) await p.serveByDaemon();
    const net = uniqueName('n');
    const bridge = uniqueName('b');
    p.network(strandNet(net, bridge, '10.97.12.0/24', '1.0.0', 'strand'));
    const id = p.runCtr(net, ['-d', '--name', 'srv', '--hostname', 'strandown', '-p', '127.0.0.1:18083:80', '-p', '18084:80'], ['httpd', '-f', '-p', '80', '-h', '/']).trim();
    const ip = p.inspect('srv', `{{(index .NetworkSettings.Networks "${net}").IPAddress}}`);
    const rules = saveRules(p.world);
    assert.match(rules, new RegExp(`-d 127\\.0\\.0\\.1/32 -p tcp -m tcp --dport 18083 -j DNAT --to-destination ${ip.replace(/\./g, '\\.')}:80`));
    assert.doesNotMatch(rules, /CNI-HOSTPORT/, 'no reference portmap rules: strand made the mapping');
    assert.equal((await fetchFrom(p.world.host.name, 'http://127.0.0.1:18083/etc/hostname'))?.trim(), 'strandown');
    assert.equal((await fetchFrom(p.world.outside.name, `http://${HOST_OUT}:18084/etc/hostname`))?.trim(), 'strandown');
    const client = p.runCtr(net, ['--rm'], ['sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O - http://${ip}/etc/hostname && exit 0; sleep 0.3; done; exit 1`]);
    assert.equal(client.trim(), 'strandown');

    p.podman(['rm', '--force', '--time', '0', 'srv']);
    assert.deepEqual(bridgePorts(p.world, bridge), []);
    assert.deepEqual(await heldAddresses(p.store, net), []);
    assert.doesNotMatch(saveRules(p.world), /18083|18084/);
    assert.deepEqual(cacheFiles(net), []);
    const mine = p.verbs().filter((c) => c.containerId === id && c.verb !== 'VERSION');
    assert.deepEqual(mine.map((c) => `${c.plugin} ${c.verb} ${c.rc}`), ['strand-bridge ADD 0', 'strand-bridge DEL 0']);
  });
});
