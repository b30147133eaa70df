// Docker's published ports as port requests: host addresses (issue 13).
import assert from 'node:assert/strict';
import { PORTMAP, portRequests } from '../../../plugins/docker/ports.js';
import { Body } from '../../../plugins/docker/schema.js';

const options = (HostIP: string) => Body.of('CreateEndpoint', { [PORTMAP]: [{ Proto: 6, IP: '', Port: 80, HostIP, HostPort: 8080, HostPortEnd: 8080 }] });

describe('docker published ports', () => {
  it('keeps a host address', () => {
    assert.deepEqual(portRequests(options('fe80::1')), [{ proto: 'tcp', hostIp: 'fe80::1', hostPort: 8080, containerPort: 80 }]);
    assert.deepEqual(portRequests(options('')), [{ proto: 'tcp', hostIp: '', hostPort: 8080, containerPort: 80 }]);
  });

  it('refuses a host address with an IPv6 zone id, naming it', () => {
    assert.throws(() => portRequests(options('fe80::1%eth0')), /invalid host address "fe80::1%eth0" in a published port: it has an IPv6 zone id; publish on the address alone \("fe80::1"\)/);
  });
});
