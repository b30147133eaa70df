// The agent's desired state and diff, without a kernel: which endpoints
// become peers (remote, with a live host) and which changes reconcile a table.
import assert from 'node:assert/strict';
import { desiredFor, diff, emptyView, type PeerTable } from '../../agent/overlay-tables.js';

function view() {
  const v = emptyView();
  v.hosts.set('a', { hostId: 'a', vtep: '192.0.2.1', underlay: 'eth0', underlayMtu: 1500, since: '' });
  v.hosts.set('b', { hostId: 'b', vtep: '192.0.2.2', underlay: 'eth0', underlayMtu: 1500, since: '' });
  v.endpoints.set('e1', { id: 'e1', networkId: 'n', hostId: 'a', mac: '02:42:0a:00:00:01', addresses: ['10.0.0.1/24'] });
  v.endpoints.set('e2', { id: 'e2', networkId: 'n', hostId: 'b', mac: '02:42:0a:00:00:02', addresses: ['10.0.0.2/24', 'fd00::2/64'] });
  v.endpoints.set('e3', { id: 'e3', networkId: 'n', hostId: 'dead', mac: '02:42:0a:00:00:03', addresses: ['10.0.0.3/24'] });
  v.endpoints.set('e4', { id: 'e4', networkId: 'other', hostId: 'b', mac: '02:42:0a:00:00:04', addresses: ['10.1.0.4/24'] });
  return v;
}

describe('overlay peer tables', () => {
  it('wants every remote endpoint of the network whose host is alive, one neighbour per address', () => {
    const d = desiredFor(view(), 'n', 'a');
    assert.deepEqual(d.fdb, [{ mac: '02:42:0a:00:00:02', dst: '192.0.2.2' }]);
    assert.deepEqual(d.neigh, [
      { ip: '10.0.0.2', mac: '02:42:0a:00:00:02' },
      { ip: 'fd00::2', mac: '02:42:0a:00:00:02' },
    ]);
  });

  it('adds what is missing, moves a MAC to its new VTEP, and removes what no endpoint wants', () => {
    const t: PeerTable = {
      network: 'n', networkId: 'n', vni: 4096, device: 'vx', present: true, mtu: { desired: 1450, actual: 1450 },
      desired: { fdb: [{ mac: 'm1', dst: 'h1' }, { mac: 'm2', dst: 'h2' }], neigh: [{ ip: '10.0.0.1', mac: 'm1' }] },
      actual: { fdb: [{ mac: 'm2', dst: 'old' }, { mac: 'm9', dst: 'h9' }], neigh: [{ ip: '10.0.0.1', mac: 'm1' }, { ip: '10.0.0.9', mac: 'm9' }] },
    };
    assert.deepEqual(diff(t), {
      addFdb: [{ mac: 'm1', dst: 'h1' }, { mac: 'm2', dst: 'h2' }],
      delFdb: [{ mac: 'm9', dst: 'h9' }],
      setNeigh: [],
      delNeigh: [{ ip: '10.0.0.9', mac: 'm9' }],
    });
    assert.deepEqual(diff({ ...t, actual: t.desired }), { addFdb: [], delFdb: [], setNeigh: [], delNeigh: [] });
  });
});
