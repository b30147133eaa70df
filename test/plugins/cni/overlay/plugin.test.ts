// strand-overlay's checks that need no kernel: its config, every verb of the
// plugin run without a daemon (the installed front's Node fallback) and in a
// daemon without its overlay agent, which must refuse with a code the runtime
// understands and touch nothing.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openController } from '../../../../runtime/index.js';
import { parseOverlayConf } from '../../../../plugins/cni/overlay/config.js';
import { overlayHandlers } from '../../../../plugins/cni/overlay/plugin.js';
import { CniError, type NetConf } from '../../../../plugins/cni/protocol/types.js';
import { ENV, runSkel } from '../helpers.js';

const base = { cniVersion: '1.1.0', name: 'pods', type: 'strand-overlay' };

describe('strand-overlay config', () => {
  it('takes the network by name or id', () => {
    assert.deepEqual(parseOverlayConf({ ...base, network: 'ovl' }), { network: 'ovl' });
    assert.deepEqual(parseOverlayConf({ ...base, network: 'ovl', ipam: {} }), { network: 'ovl' });
  });

  // [what, extra keys, message pattern]; every one is code 7.
  const bad: [string, Record<string, unknown>, RegExp][] = [
    ['no network', {}, /"network" is required.*strand network create -d overlay/],
    ['an empty network', { network: '' }, /"network" is required/],
    ['a network that is not a string', { network: 7 }, /invalid "network" 7/],
    ['an mtu', { network: 'ovl', mtu: 1400 }, /"mtu" cannot be set per attachment.*--opt mtu=N/],
    ['a subnet', { network: 'ovl', subnet: '10.0.0.0/24' }, /does not create networks; create "ovl" with "strand network create -d overlay --subnet CIDR ovl"/],
    ['an ipam section', { network: 'ovl', ipam: { type: 'host-local' } }, /"ipam" cannot be set here.*runtimeConfig\.ips/],
  ];
  for (const [what, extra, pattern] of bad) {
    it(`refuses ${what} (7)`, () => {
      assert.throws(() => parseOverlayConf({ ...base, ...extra } as NetConf), (e: unknown) => e instanceof CniError && e.code === 7 && pattern.test(e.message));
    });
  }
});

describe('strand-overlay without a daemon', () => {
  const stdin = JSON.stringify({ ...base, network: 'ovl' });
  for (const [verb, code] of [['ADD', 11], ['DEL', 11], ['CHECK', 11], ['GC', 11], ['STATUS', 50]] as const) {
    it(`${verb} fails with ${code}, naming the daemon and the socket it looked for`, async () => {
      const prev = verb === 'CHECK' ? { prevResult: { cniVersion: '1.1.0', ips: [] } } : {};
      const ran = await runSkel(overlayHandlers(), { ...ENV, CNI_COMMAND: verb, STRAND_RUN_DIR: '/run/strand-x' }, JSON.stringify({ ...base, network: 'ovl', ...prev }));
      assert.equal(ran.code, 1);
      assert.equal(ran.json?.code, code);
      assert.match(String(ran.json?.msg), /needs a running strand daemon with its overlay agent.*\/run\/strand-x\/cni\.sock/);
    });
  }

  it('VERSION still answers', async () => {
    const ran = await runSkel(overlayHandlers(), { CNI_COMMAND: 'VERSION' }, stdin);
    assert.equal(ran.code, 0);
    assert.ok((ran.json?.supportedVersions as string[]).includes('1.1.0'));
  });
});

describe('strand-overlay in a daemon without its overlay agent', () => {
  it('ADD is 11 and STATUS 50, saying to restart the daemon with --advertise-addr', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strand-ovl-noagent-'));
    const ctl = await openController({ store: `local://${join(dir, 'store')}`, runDir: join(dir, 'run'), hostId: 'h1' });
    try {
      const handlers = overlayHandlers({ controller: ctl, agent: false });
      const stdin = JSON.stringify({ ...base, network: 'ovl' });
      for (const [verb, code] of [['ADD', 11], ['STATUS', 50]] as const) {
        const ran = await runSkel(handlers, { ...ENV, CNI_COMMAND: verb }, stdin);
        assert.equal(ran.json?.code, code, verb);
        assert.match(String(ran.json?.msg), /without its overlay agent: restart it with --store URL --advertise-addr IP --host-id ID/);
      }
      assert.deepEqual(await ctl.store.list('core/'), [], 'nothing recorded');
    } finally {
      await ctl.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
