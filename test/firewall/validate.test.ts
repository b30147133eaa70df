import assert from 'node:assert/strict';
import { validateNetwork, validateEndpoint } from '../../firewall/validate.js';
import { StrandError } from '../../common/errors.js';
import type { NetworkRules, EndpointPorts } from '../../firewall/types.js';

const n: NetworkRules = { id: 'n1', bridge: 'br0', subnets: ['10.1.0.0/24'], icc: true, internal: false, masquerade: true };
const e: EndpointPorts = { endpointId: 'e1', networkId: 'n1', bridge: 'br0', containerIp: '10.1.0.2', ports: [{ proto: 'tcp', hostPort: 80, containerPort: 80 }] };
const invalid = (re: RegExp) => (err: unknown) => err instanceof StrandError && err.code === 'invalid' && re.test(err.message);

describe('firewall input validation', () => {
  it('accepts good input', () => {
    validateNetwork(n);
    validateNetwork({ ...n, subnets: ['10.1.0.0/24', 'fd00::/64'], hostIp: '192.0.2.1' });
    validateEndpoint(e);
    validateEndpoint({ ...e, ports: [...e.ports, { proto: 'udp', hostPort: 80, containerPort: 80 }, { proto: 'tcp', hostIp: '127.0.0.1', hostPort: 80, containerPort: 81 }] });
  });

  it('refuses what iptables would misread or the kernel would refuse, naming the field', () => {
    assert.throws(() => validateNetwork({ ...n, bridge: 'br+' }), invalid(/network "n1": bridge name "br\+" has characters iptables would misread/));
    assert.throws(() => validateNetwork({ ...n, bridge: '' }), invalid(/invalid interface name ""/));
    assert.throws(() => validateNetwork({ ...n, id: '-x' }), invalid(/invalid network id "-x"/));
    assert.throws(() => validateNetwork({ ...n, subnets: ['10.1.0.0'] }), invalid(/subnet .*expected ADDRESS\/PREFIXLEN/));
    assert.throws(() => validateNetwork({ ...n, icc: 'yes' as unknown as boolean }), invalid(/icc must be true or false/));
    assert.throws(() => validateNetwork({ ...n, hostIp: 'eth0' }), invalid(/hostIp "eth0" is not an IP address/));
    assert.throws(() => validateEndpoint({ ...e, endpointId: 'a"b' }), invalid(/invalid endpoint id/));
    assert.throws(() => validateEndpoint({ ...e, ports: [{ proto: 'tcp', hostPort: 8000, hostPortEnd: 8010, containerPort: 80 }] }), invalid(/not chosen yet/));
    assert.throws(() => validateEndpoint({ ...e, ports: [{ proto: 'tcp', hostPort: 80, containerPort: 1.5 }] }), invalid(/containerPort must be an integer/));
    assert.throws(() => validateEndpoint({ ...e, ports: [{ proto: 'tcp', hostIp: 'x', hostPort: 80, containerPort: 80 }] }), invalid(/hostIp "x"/));
  });

  it('refuses an IPv6 zone id in a host address, whichever front door it came through (issue 13)', () => {
    assert.throws(() => validateNetwork({ ...n, hostIp: 'fe80::1%eth0' }), invalid(/network "n1": hostIp "fe80::1%eth0" has an IPv6 zone id; a host binding takes the address alone \("fe80::1"\)/));
    assert.throws(() => validateEndpoint({ ...e, ports: [{ proto: 'tcp', hostIp: 'fe80::1%2', hostPort: 80, containerPort: 80 }] }), invalid(/port mapping .*: hostIp "fe80::1%2" has an IPv6 zone id/));
  });
});
