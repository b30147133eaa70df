// Bad input and crashes: a clear error naming the problem, and nothing
// half-made or leaked, checked against the kernel and the store.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { useTestBed, ipJson, run } from '../../test/support/harness.js';
import { listNetns } from '../../netlink/index.js';
import { StrandHost } from './strand-host.js';
import { processAlive } from '../../core/process-info.js';

const BIN = join(process.cwd(), 'bin', 'strand');

/** Links, namespaces and strand rules a host holds: what a refused request must leave as it was. */
function snapshot(h: StrandHost): { links: string[]; netns: string[]; rules: string } {
  return {
    links: ipJson<{ ifname: string }>(['link', 'show'], h.name).map((l) => l.ifname).sort(),
    netns: listNetns().filter((n) => n.startsWith('strand-')).sort(),
    rules: run('ip', ['netns', 'exec', h.name, 'iptables-save']).stdout.split('\n').filter((l) => /STRAND|strand/.test(l)).sort().join('\n'),
  };
}

function refused(h: StrandHost, args: string[], pattern: RegExp): void {
  const r = h.strand(args, { allowFail: true });
  assert.notEqual(r.status, 0, `strand ${args.join(' ')} should fail`);
  assert.match(r.stderr, pattern);
}

describe('strand failures and bad input', function () {
  this.timeout(120000);
  const bed = useTestBed();

  it('refuses a duplicate network name and an overlapping subnet, making nothing', () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.60.0.0/16', 'n1']);
    const before = snapshot(h);
    refused(h, ['network', 'create', '--subnet', '10.61.0.0/24', 'n1'], /network "n1" already exists/);
    refused(h, ['network', 'create', '--subnet', '10.60.5.0/24', 'n2'], /10\.60\.5\.0\/24 overlaps .*10\.60\.0\.0\/16/);
    refused(h, ['network', 'create', '--subnet', '10.62.0.0/24', '--gateway', '10.63.0.1', 'n3'], /no --subnet contains gateway 10\.63\.0\.1/);
    refused(h, ['network', 'create', '--subnet', '10.62.0.0/24', '--ip-range', '10.62.1.0/25', 'n3'], /no --subnet contains ip range/);
    refused(h, ['network', 'create', '--subnet', '10.62.0.300/24', 'n3'], /10\.62\.0\.300/);
    refused(h, ['network', 'create', '--opt', 'colour=blue', 'n3'], /unknown option "colour"/);
    refused(h, ['network', 'create', '--opt', 'mtu=12', 'n3'], /invalid MTU "12"/);
    refused(h, ['network', 'create', '--driver', 'warp', 'n3'], /unknown network driver "warp"/);
    refused(h, ['network', 'create', 'bad/name'], /invalid network name "bad\/name"/);
    assert.deepEqual(snapshot(h), before);
    assert.deepEqual(JSON.parse(h.strand(['network', 'ls', '--format', 'json']).stdout).map((n: { Name: string }) => n.Name), ['n1']);
    // The refused subnets were not kept: they are free to use now.
    h.strand(['network', 'create', '--subnet', '10.62.0.0/24', 'n3']);
  });

  it('refuses a host port already published, and cleans up the refused sandbox', () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.64.0.0/24', 'n1']);
    h.strand(['run', '-d', '--name', 'a', '--network', 'n1', '-p', '8080:7000', '--', 'sleep', '300']);
    const before = snapshot(h);
    refused(h, ['run', '--name', 'b', '--network', 'n1', '-p', '8080:7001', '--', 'true'], /host port 8080\/tcp is already published by endpoint/);
    refused(h, ['run', '--name', 'b', '--network', 'n1', '-p', '127.0.0.1:8080:7001', '--', 'true'], /already published/);
    assert.deepEqual(snapshot(h), before);
    assert.deepEqual(h.ps().map((s) => s.name), ['a']);
    // The same port over UDP is a different port.
    h.strand(['run', '--name', 'b', '--network', 'n1', '-p', '8080:7001/udp', '--', 'true']);
  });

  it('refuses an address outside the subnet or already taken, naming it', () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.65.0.0/24', 'n1']);
    h.strand(['run', '-d', '--name', 'a', '--network', 'n1', '--ip', '10.65.0.10', '--', 'sleep', '300']);
    assert.equal(h.ipOf('a'), '10.65.0.10');
    const before = snapshot(h);
    refused(h, ['run', '--network', 'n1', '--ip', '10.66.0.10', '--', 'true'], /10\.66\.0\.10 is outside/);
    refused(h, ['run', '--network', 'n1', '--ip', '10.65.0.10', '--', 'true'], /10\.65\.0\.10 .*already allocated/);
    refused(h, ['run', '--network', 'n1', '--ip', '10.65.0.255', '--', 'true'], /broadcast/);
    refused(h, ['run', '--network', 'n1', '-p', '70000:80', '--', 'true'], /port 70000 is out of range/);
    refused(h, ['run', '--network', 'host', '-p', '8080:80', '--', 'true'], /cannot be used/);
    refused(h, ['run', '--network', 'nosuch', '--', 'true'], /network "nosuch" not found/);
    refused(h, ['run', '--network', 'n1', '--', '/nonexistent/program'], /could not be started/);
    assert.deepEqual(snapshot(h), before);
    assert.deepEqual(h.ps().map((s) => s.name), ['a']);
  });

  it('takes names that look like id prefixes as names', () => {
    const h = new StrandHost(bed());
    // Sixteen one-letter hex names: nearly surely some sandbox id starts with one of them.
    const names = [...'0123456789abcdef'];
    for (const n of names) h.strand(['run', '-d', '--name', n, '--network', 'none', '--', 'sleep', '300']);
    assert.deepEqual(h.ps().map((s) => s.name).sort(), names);
    for (const n of names) {
      h.strand(['network', 'create', '--subnet', `10.${80 + parseInt(n, 16)}.0.0/24`, `${n}`]);
    }
    refused(h, ['run', '--name', 'a', '--network', 'none', '--', 'true'], /a sandbox named "a" already exists/);
    h.strand(['rm', '-f', ...names]);
    assert.deepEqual(h.ps(), []);
  });

  it('refuses to remove a network that still has endpoints, saying which', () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.67.0.0/24', 'n1']);
    h.strand(['run', '-d', '--name', 'busy', '--network', 'n1', '--', 'sleep', '300']);
    refused(h, ['network', 'rm', 'n1'], /network "n1" still has 1 endpoint\(s\), in sandbox\(es\) busy/);
    refused(h, ['rm', 'busy'], /is running/);
    h.strand(['rm', '-f', 'busy']);
    h.strand(['network', 'rm', 'n1']);
    assert.deepEqual(ipJson<{ ifname: string }>(['link', 'show', 'type', 'bridge'], h.name), []);
  });

  it('strand gc removes what a strand run killed with kill -9 left, and releases its address', async () => {
    const h = new StrandHost(bed());
    h.strand(['network', 'create', '--subnet', '10.68.0.0/24', 'n1']);
    const base = snapshot(h);
    const child = bed().process(spawn('nsenter', [`--net=/run/netns/${h.name}`, process.execPath, BIN, 'run', '--name', 'doomed', '--network', 'n1', '-p', '8088:80', '--', 'sleep', '300'], { env: h.env, stdio: 'ignore' }));
    let sb: ReturnType<StrandHost['ps']>[number] | undefined;
    for (let i = 0; i < 100 && !sb?.pid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      sb = h.ps().find((s) => s.name === 'doomed');
    }
    assert.ok(sb?.pid, 'the run started');
    const address = sb.addresses[0]!;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // Left behind: the sandbox, its veth, its port rules, its address.
    assert.notDeepEqual(snapshot(h), base);
    const gc = h.strand(['gc']).stdout;
    assert.match(gc, /removed sandbox doomed/);
    assert.deepEqual(snapshot(h), base);
    assert.deepEqual(h.ps(), []);
    assert.ok(!processAlive(sb.pid), 'the orphaned command was stopped');
    // The address is free again: asking for it by name works.
    h.strand(['run', '--network', 'n1', '--ip', address.split('/')[0]!, '--', 'true']);
  });
});
