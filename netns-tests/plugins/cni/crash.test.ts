// Crash: a plugin killed with kill -9 at any point of ADD leaves nothing that
// the runtime's DEL or GC does not then remove, and the store stays readable.
// Each trial kills ADD after a delay spread over a normal ADD's duration
// (measured first), then acts as a runtime might: forget the attachment
// (GC's job), DEL it, or DEL it and ADD it again. At the end, GC runs with
// the attachments that completed, and the kernel, iptables and the store are
// read independently.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ipJson, run, uniqueName, useTestBed, waitFor, type TestBed } from '../../../test/support/harness.js';
import { World } from '../../../test/support/topology.js';
import { invokePluginRaw, type RawOutcome } from '../../../plugins/cni/protocol/exec.js';
import { attachmentId } from '../../../plugins/cni/protocol/attachment.js';
import { hostVethName } from '../../../core/ids.js';
import { runConflist, type Conflist, type RunOptions } from '../../../test/support/cni-runtime.js';
import { pluginPath, startDaemon } from './plugin-bin.js';
import { heldAddresses } from './ipam-view.js';

const TRIALS = 36;
const ARGS = 'IgnoreUnknown=1';

type Mode = 'forget' | 'del' | 'del-readd';
const MODES: Mode[] = ['forget', 'del', 'del-readd'];

interface Trial {
  cid: string;
  netns: string;
  delayMs: number;
  killed: boolean;
  mode: Mode;
  /** The runtime holds this attachment at the end (its ADD completed, first or second time). */
  valid: boolean;
  /** The address the completed ADD reported. */
  address?: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The config one plugin of `list` gets for `verb`, as libcni builds it. */
function pluginConf(list: Conflist, index: number, runtimeConfig?: Record<string, unknown>): Record<string, unknown> {
  return { ...list.plugins[index]!, name: list.name, cniVersion: list.cniVersion, ...(runtimeConfig ? { runtimeConfig } : {}) };
}

/** Waits until nothing runs in the host namespace any more (iptables-restore a killed plugin left running). */
async function settle(host: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (run('ip', ['netns', 'pids', host]).stdout.trim() === '') return;
    await sleep(50);
  }
  throw new Error(`processes still run in ${host}: ${run('ip', ['netns', 'pids', host]).stdout.trim()}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Delay of trial i: spread evenly over [0, span] (a typical ADD's duration), jittered inside its slot. */
const delayFor = (i: number, span: number): number => Math.floor(((i + Math.random()) / TRIALS) * span);

interface Rig {
  world: World;
  path: string[];
  store: string;
  cacheDir: string;
  opts(cid: string, netns: string, extra?: Partial<RunOptions>): RunOptions;
}

async function rig(bed: TestBed): Promise<Rig> {
  const world = new World(bed);
  const { path, store } = await pluginPath(bed, world.host.name);
  const cacheDir = bed.tempDir(mkdtempSync(join(tmpdir(), 'strand-cni-cache-')));
  return { world, path, store, cacheDir, opts: (cid, netns, extra = {}) => ({ verb: 'ADD', containerId: cid, netns, ifName: 'eth0', path, cacheDir, cniArgs: ARGS, ...extra }) };
}

/** One ADD of a single plugin, killed with SIGKILL after `killAfterMs` (none: runs to the end); its outcome and duration. */
async function addOnce(r: Rig, type: string, config: Record<string, unknown>, cid: string, netns: string, killAfterMs?: number): Promise<{ o: RawOutcome; ms: number }> {
  const t0 = performance.now();
  const o = await invokePluginRaw({ type, path: r.path, command: 'ADD', containerId: cid, netns, ifName: 'eth0', args: ARGS, config, ...(killAfterMs !== undefined ? { timeoutMs: killAfterMs } : {}) });
  return { o, ms: performance.now() - t0 };
}

describe('CNI plugins killed with kill -9 during ADD', function () {
  this.timeout(300000);
  const bed = useTestBed();

  for (const daemon of [false, true]) it(`strand-bridge + strand-ipam with published ports: ${TRIALS} kills ${daemon ? 'of the strand daemon serving' : 'of'} ADD at delays over a whole ADD; DEL and GC leave exactly the completed attachments`, async () => {
    const r = await rig(bed());
    // With a daemon, the process to kill is the daemon (killing the front would not stop its work); it is
    // started again after each kill, as a supervisor would, and its start must not harm live attachments.
    const daemonEnv = { STRAND_STORE: r.store, STRAND_RUN_DIR: join(r.path[0]!, 'run') };
    let served: ChildProcess | undefined = daemon ? await startDaemon(bed(), r.world.host.name, daemonEnv) : undefined;
    const killAdd = async (config: Record<string, unknown>, cid: string, netns: string, delayMs: number): Promise<RawOutcome> => {
      if (!served) return (await addOnce(r, 'strand-bridge', config, cid, netns, delayMs)).o;
      const victim = served;
      let exited: Promise<unknown> | undefined;
      const timer = setTimeout(() => {
        exited = new Promise((res) => victim.once('exit', res));
        victim.kill('SIGKILL');
      }, delayMs);
      const o = (await addOnce(r, 'strand-bridge', config, cid, netns)).o;
      clearTimeout(timer);
      if (exited) {
        await exited;
        await settle(r.world.host.name);
        served = await startDaemon(bed(), r.world.host.name, daemonEnv);
      }
      return o;
    };
    const bridge = 'br-crash';
    const list: Conflist = {
      cniVersion: '1.1.0',
      name: 'crash',
      plugins: [{ type: 'strand-bridge', bridge, isGateway: true, isDefaultGateway: true, ipMasq: true, capabilities: { portMappings: true }, ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.98.0.0/24' }]] } }],
    };
    const ports = (i: number) => [{ hostPort: 20000 + i, containerPort: 80, protocol: 'tcp' }];
    const conf = (i: number) => pluginConf(list, 0, { portMappings: ports(i) });

    // One attachment stays throughout, as on a busy node: the network's last DEL would remove it, so without
    // this every warm-up ADD would make the bridge and its rules again, and be slower than the ADDs killed below.
    const anchorNs = `/run/netns/${bed().netns('a').name}`;
    const anchor = (await addOnce(r, 'strand-bridge', conf(800), 'k800', anchorNs)).o;
    assert.equal(anchor.exitCode, 0, anchor.stdout + anchor.stderr);
    const anchorTrial: Trial = { cid: 'k800', netns: anchorNs, delayMs: 0, killed: false, mode: MODES[0]!, valid: true, address: (JSON.parse(anchor.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]! };

    // A normal ADD's duration, with the network in place.
    const durations: number[] = [];
    for (let k = 0; k < 5; k++) {
      const ns = `/run/netns/${bed().netns('w').name}`;
      const { o, ms } = await addOnce(r, 'strand-bridge', conf(900 + k), `warm${k}`, ns);
      assert.equal(o.exitCode, 0, o.stdout + o.stderr);
      durations.push(ms);
      await runConflist(list, r.opts(`warm${k}`, ns, { verb: 'DEL', capabilityArgs: { portMappings: ports(900 + k) } }));
    }
    const span = median(durations);
    assert.deepEqual((await heldAddresses(r.store, 'crash')).map((h) => h.containerId), ['k800'], 'warm-up left nothing but the anchor');

    const trials: Trial[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const cid = `k${i}`;
      const netns = `/run/netns/${bed().netns('k').name}`;
      const delayMs = delayFor(i, span);
      const o = await killAdd(conf(i), cid, netns, delayMs);
      const killed = o.exitCode !== 0;
      // Killed itself: exit 128; its daemon killed: the front reports code 11 (try again).
      if (killed && daemon) assert.equal((JSON.parse(o.stdout) as { code: number }).code, 11, `trial ${i}: not killed but failed: ${o.stdout}${o.stderr}`);
      else if (killed) assert.equal(o.exitCode, 128, `trial ${i}: not killed but failed: ${o.stdout}${o.stderr}`);
      const t: Trial = { cid, netns, delayMs, killed, mode: MODES[i % MODES.length]!, valid: !killed };
      if (!killed) t.address = (JSON.parse(o.stdout) as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
      if (!daemon) await settle(r.world.host.name);
      // The store opens and lists after every kill.
      await heldAddresses(r.store, 'crash');
      if (killed && t.mode !== 'forget') {
        // A runtime DELs a failed ADD (no cached result: no prevResult), with the same port mappings.
        await runConflist(list, r.opts(cid, netns, { verb: 'DEL', capabilityArgs: { portMappings: ports(i) } }));
        const vethLeft = (): boolean => ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).some((l) => l.ifname === hostVethName(attachmentId('crash', cid, 'eth0')));
        // A daemon removes the veth on a worker thread, after its answer: wait for it, bounded.
        if (daemon) await waitFor('the DELed veth to go', () => !vethLeft(), 5000).catch(() => undefined);
        assert.ok(!vethLeft(), `trial ${i}: DEL left the veth`);
        assert.ok(!(await heldAddresses(r.store, 'crash')).some((h) => h.containerId === cid), `trial ${i}: DEL left the address`);
        assert.doesNotMatch(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save', '-t', 'nat']).stdout, new RegExp(`--dport ${20000 + i} `), `trial ${i}: DEL left the port rule`);
        if (t.mode === 'del-readd') {
          const again = await runConflist(list, { ...r.opts(cid, netns, { capabilityArgs: { portMappings: ports(i) } }), verb: 'ADD' });
          t.valid = true;
          t.address = again.result.ips![0]!.address.split('/')[0]!;
        }
      }
      trials.push(t);
    }
    const killedCount = trials.filter((t) => t.killed).length;
    assert.ok(killedCount >= TRIALS / 2, `only ${killedCount} of ${TRIALS} ADDs were killed (span ${span} ms): the delays do not cover ADD`);
    trials.push(anchorTrial);

    await runConflist(list, { ...r.opts('', ''), verb: 'GC', validAttachments: trials.filter((t) => t.valid).map((t) => ({ containerId: t.cid, ifName: 'eth0' })) });

    const valid = trials.filter((t) => t.valid);
    const report = trials.map((t) => `${t.cid}:${t.delayMs}ms:${t.killed ? 'killed' : 'done'}:${t.mode}`).join(' ');
    // Links: the bridge holds exactly the valid attachments' veths; no other strand veth exists.
    const wantVeths = valid.map((t) => hostVethName(attachmentId('crash', t.cid, 'eth0'))).sort();
    const onBridge = (): string[] => ipJson<{ ifname: string }>(['link', 'show', 'master', bridge], r.world.host.name).map((l) => l.ifname).sort();
    // A daemon removes the veths GC collected on a worker thread, after its answer: wait for it, bounded.
    if (daemon) await waitFor('the collected veths to go', () => onBridge().length === wantVeths.length, 10000).catch(() => undefined);
    assert.deepEqual(onBridge(), wantVeths, report);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], r.world.host.name).map((l) => l.ifname).filter((n) => /^s[vt](cni)?[0-9a-f]{9,12}$/.test(n)).sort(), wantVeths, report);
    // Killed, forgotten containers have nothing left in their namespace either.
    for (const t of trials.filter((x) => !x.valid)) assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show'], t.netns.slice('/run/netns/'.length)).map((l) => l.ifname), ['lo'], `${t.cid}: ${report}`);
    // IPAM: exactly the valid attachments' addresses, the ones their ADDs reported.
    assert.deepEqual(
      (await heldAddresses(r.store, 'crash')).map((h) => `${h.containerId} ${h.address}`).sort(),
      valid.map((t) => `${t.cid} ${t.address}`).sort(),
      report,
    );
    // Firewall: DNAT rules for the valid attachments' ports only, to their addresses.
    const nat = run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save', '-t', 'nat']).stdout;
    const dnat = [...nat.matchAll(/--dport (\d+) -j DNAT --to-destination ([\d.]+):80/g)].map((m) => `${m[1]} ${m[2]}`).sort();
    assert.deepEqual(dnat, valid.map((t) => `${20000 + Number(t.cid.slice(1))} ${t.address}`).sort(), report);
    // And the network still works: every valid attachment passes CHECK (ADDs from the runner were cached).
    for (const t of valid.filter((x) => x.killed)) await runConflist(list, r.opts(t.cid, t.netns, { verb: 'CHECK' }));
    if (daemon) assert.ok(served && served.exitCode === null, 'the last daemon still serves');
  });

  it('GC removes the published ports of an attachment whose namespace went away without a DEL', async () => {
    // The deterministic case of what a kill after publishing leaves: rules that only GC can find.
    const r = await rig(bed());
    const list: Conflist = {
      cniVersion: '1.1.0',
      name: 'gone',
      plugins: [{ type: 'strand-bridge', bridge: 'br-gone', isGateway: true, ipMasq: true, capabilities: { portMappings: true }, ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.98.2.0/24' }]] } }],
    };
    const keep = bed().netns('g');
    // Made with ip(8), so that no handle of this process keeps it alive once its name is removed.
    const lost = { name: uniqueName('g') };
    run('ip', ['netns', 'add', lost.name]);
    bed().defer(() => void run('ip', ['netns', 'del', lost.name], { allowFail: true }));
    const kept = await runConflist(list, { ...r.opts('keep', `/run/netns/${keep.name}`, { capabilityArgs: { portMappings: [{ hostPort: 20501, containerPort: 80, protocol: 'tcp' }] } }), verb: 'ADD' });
    await runConflist(list, { ...r.opts('lost', `/run/netns/${lost.name}`, { capabilityArgs: { portMappings: [{ hostPort: 20502, containerPort: 80, protocol: 'tcp' }] } }), verb: 'ADD' });
    assert.match(run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save', '-t', 'nat']).stdout, /--dport 20502 /);
    // The runtime crashed: the namespace is gone (and its veth with it), the cache entry too.
    run('ip', ['netns', 'del', lost.name]);
    run('rm', ['-f', join(r.cacheDir, 'results', 'gone-lost-eth0')]);
    await runConflist(list, { ...r.opts('', ''), verb: 'GC', validAttachments: [{ containerId: 'keep', ifName: 'eth0' }] });
    const nat = run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save', '-t', 'nat']).stdout;
    assert.doesNotMatch(nat, /--dport 20502 /, 'the lost attachment\'s port rule is gone');
    assert.match(nat, new RegExp(`--dport 20501 -j DNAT --to-destination ${kept.result.ips![0]!.address.split('/')[0]!.replace(/\./g, '\\.')}:80`), 'the valid one is kept');
    assert.deepEqual((await heldAddresses(r.store, 'gone')).map((h) => h.containerId), ['keep']);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show', 'master', 'br-gone'], r.world.host.name).map((l) => l.ifname), [kept.result.interfaces![1]!.name]);
  });

  it('a strand daemon started after a crash leaves live CNI attachments alone (veth, port rules, network rules)', async () => {
    // What the daemon variant above needs first: a supervisor restarts a killed daemon, and the daemon's start
    // (reconcile) must not take CNI's objects, which are not in core's records, for core's orphans.
    const r = await rig(bed());
    const list: Conflist = {
      cniVersion: '1.1.0',
      name: 'live',
      plugins: [{ type: 'strand-bridge', bridge: 'br-live', isGateway: true, ipMasq: true, capabilities: { portMappings: true }, ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.98.3.0/24' }]] } }],
    };
    const c = bed().netns('l');
    const added = await runConflist(list, { ...r.opts('ctr1', `/run/netns/${c.name}`, { capabilityArgs: { portMappings: [{ hostPort: 20601, containerPort: 80, protocol: 'tcp' }] } }), verb: 'ADD' });
    const veth = added.result.interfaces![1]!.name;
    const save = () => run('ip', ['netns', 'exec', r.world.host.name, 'iptables-save']).stdout;
    assert.match(save(), /--dport 20601 -j DNAT/);
    await startDaemon(bed(), r.world.host.name, { STRAND_STORE: r.store, STRAND_RUN_DIR: join(r.path[0]!, 'run') });
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show', 'master', 'br-live'], r.world.host.name).map((l) => l.ifname), [veth], "the daemon's start removed the CNI attachment's veth");
    const rules = save();
    assert.match(rules, /--dport 20601 -j DNAT/, "the daemon's start removed the CNI attachment's port rule");
    assert.match(rules, /-A STRAND-FORWARD -i br-live /, "the daemon's start removed the CNI network's rules");
    await runConflist(list, r.opts('ctr1', `/run/netns/${c.name}`, { verb: 'CHECK' }));
  });

  it(`strand-ipam under the reference bridge: ${TRIALS} kills of strand-ipam ADD; DEL and GC leave exactly the completed allocations`, async () => {
    const r = await rig(bed());
    const list: Conflist = {
      cniVersion: '1.0.0',
      name: 'crashipam',
      plugins: [{ type: 'bridge', bridge: 'br-crashi', isGateway: true, ipMasq: false, ipam: { type: 'strand-ipam', ranges: [[{ subnet: '10.98.1.0/24' }]] } }],
    };
    // What the reference bridge hands its IPAM plugin: its own config, the same environment.
    const ipamConf = pluginConf(list, 0);
    const durations: number[] = [];
    for (let k = 0; k < 5; k++) {
      const { o, ms } = await addOnce(r, 'strand-ipam', ipamConf, `warm${k}`, `/run/netns/${bed().netns('w').name}`);
      assert.equal(o.exitCode, 0, o.stdout + o.stderr);
      durations.push(ms);
      const d = await invokePluginRaw({ type: 'strand-ipam', path: r.path, command: 'DEL', containerId: `warm${k}`, netns: '', ifName: 'eth0', args: ARGS, config: ipamConf });
      assert.equal(d.exitCode, 0, d.stdout);
    }
    const span = median(durations);

    const trials: Trial[] = [];
    for (let i = 0; i < TRIALS; i++) {
      const cid = `i${i}`;
      const netns = `/run/netns/${bed().netns('i').name}`;
      const delayMs = delayFor(i, span);
      const { o } = await addOnce(r, 'strand-ipam', ipamConf, cid, netns, delayMs);
      const killed = o.exitCode !== 0;
      if (killed) assert.equal(o.exitCode, 128, `trial ${i}: not killed but failed: ${o.stdout}${o.stderr}`);
      const t: Trial = { cid, netns, delayMs, killed, mode: MODES[i % MODES.length]!, valid: false };
      await heldAddresses(r.store, 'crashipam');
      if (!killed) {
        // The bridge would now have failed or finished; as a runtime would after a failed bridge ADD: DEL.
        t.mode = 'del-readd';
      }
      if (t.mode !== 'forget') {
        // DEL through the reference bridge, which passes it to strand-ipam.
        await runConflist(list, r.opts(cid, netns, { verb: 'DEL' }));
        assert.ok(!(await heldAddresses(r.store, 'crashipam')).some((h) => h.containerId === cid), `trial ${i}: DEL left the address`);
        if (t.mode === 'del-readd') {
          const again = await runConflist(list, { ...r.opts(cid, netns), verb: 'ADD' });
          t.valid = true;
          t.address = again.result.ips![0]!.address.split('/')[0]!;
          const inCtr = ipJson<{ addr_info: { local: string }[] }>(['addr', 'show', 'dev', 'eth0'], netns.slice('/run/netns/'.length))[0]!;
          assert.ok(inCtr.addr_info.some((a) => a.local === t.address), `trial ${i}: the reference bridge configured ${t.address}`);
        }
      }
      trials.push(t);
    }
    const killedCount = trials.filter((t) => t.killed).length;
    assert.ok(killedCount >= TRIALS / 2, `only ${killedCount} of ${TRIALS} ADDs were killed (span ${span} ms)`);

    // The reference bridge v1.1.1 has no GC (it refuses the verb), so GC goes to strand-ipam itself, as libcni would
    // forward it from a plugin that has one.
    const valid = trials.filter((t) => t.valid);
    const gc = await invokePluginRaw({
      type: 'strand-ipam',
      path: r.path,
      command: 'GC',
      // GC needs a 1.1.0 config (the reference bridge v1.1.1 itself refuses 1.1.0, hence the 1.0.0 list).
      config: { ...ipamConf, cniVersion: '1.1.0', 'cni.dev/valid-attachments': valid.map((t) => ({ containerID: t.cid, ifname: 'eth0' })) },
    });
    assert.equal(gc.exitCode, 0, gc.stdout);
    const report = trials.map((t) => `${t.cid}:${t.delayMs}ms:${t.killed ? 'killed' : 'done'}:${t.mode}`).join(' ');
    assert.deepEqual(
      (await heldAddresses(r.store, 'crashipam')).map((h) => `${h.containerId} ${h.address}`).sort(),
      valid.map((t) => `${t.cid} ${t.address}`).sort(),
      report,
    );
    // The freed addresses are really free: the pool hands out every address but the valid ones and the gateway.
    const free = 253 - valid.length;
    const anyNs = trials[0]!.netns;
    for (let k = 0; k < free; k += 16) {
      const batch = Array.from({ length: Math.min(16, free - k) }, (_, j) => addOnce(r, 'strand-ipam', ipamConf, `fill${k + j}`, anyNs));
      for (const { o } of await Promise.all(batch)) assert.equal(o.exitCode, 0, `filling the ${free} free addresses: ${o.stdout}`);
    }
    const full = await addOnce(r, 'strand-ipam', ipamConf, 'fill-last', anyNs);
    assert.match(full.o.stdout, /no IP addresses available/);
  });
});
