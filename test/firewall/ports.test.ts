import assert from 'node:assert/strict';
import { parsePortSpec, pickFreePort, DYNAMIC_PORT_RANGE } from '../../firewall/ports.js';
import { StrandError } from '../../common/errors.js';

const invalid = (re: RegExp) => (err: unknown) => err instanceof StrandError && err.code === 'invalid' && re.test(err.message);

describe('parsePortSpec', () => {
  it('parses host:container with protocol and host address', () => {
    assert.deepEqual(parsePortSpec('8080:80'), [{ proto: 'tcp', hostPort: 8080, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('5353:53/udp'), [{ proto: 'udp', hostPort: 5353, containerPort: 53 }]);
    assert.deepEqual(parsePortSpec('127.0.0.1:8080:80/tcp'), [{ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 8080, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('[::1]:8080:80'), [{ proto: 'tcp', hostIp: '::1', hostPort: 8080, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('8080:80/UDP'), [{ proto: 'udp', hostPort: 8080, containerPort: 80 }]);
  });

  it('leaves the host port to be chosen (0) when it is not given', () => {
    assert.deepEqual(parsePortSpec('80'), [{ proto: 'tcp', hostPort: 0, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('127.0.0.1::80'), [{ proto: 'tcp', hostIp: '127.0.0.1', hostPort: 0, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('[2001:db8::1]::53/udp'), [{ proto: 'udp', hostIp: '2001:db8::1', hostPort: 0, containerPort: 53 }]);
    assert.deepEqual(parsePortSpec(':80'), [{ proto: 'tcp', hostPort: 0, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('80-82').map((m) => [m.hostPort, m.containerPort]), [[0, 80], [0, 81], [0, 82]]);
  });

  it('maps equal ranges 1:1, and a host range onto one container port as "pick one"', () => {
    assert.deepEqual(parsePortSpec('8000-8002:80-82/udp'), [
      { proto: 'udp', hostPort: 8000, containerPort: 80 },
      { proto: 'udp', hostPort: 8001, containerPort: 81 },
      { proto: 'udp', hostPort: 8002, containerPort: 82 },
    ]);
    assert.deepEqual(parsePortSpec('0.0.0.0:8000-8010:80'), [{ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 8000, hostPortEnd: 8010, containerPort: 80 }]);
    assert.deepEqual(parsePortSpec('8000-8000:80'), [{ proto: 'tcp', hostPort: 8000, containerPort: 80 }]);
  });

  it('names the bad part of a bad spec', () => {
    assert.throws(() => parsePortSpec(''), invalid(/is empty/));
    assert.throws(() => parsePortSpec('8080:80/sctp'), invalid(/protocol "sctp" is not supported/));
    assert.throws(() => parsePortSpec('8080:0'), invalid(/container port 0 is out of range/));
    assert.throws(() => parsePortSpec('70000:80'), invalid(/host port 70000 is out of range/));
    assert.throws(() => parsePortSpec('http:80'), invalid(/host port "http" is not a port/));
    assert.throws(() => parsePortSpec('8080:'), invalid(/container port is missing/));
    assert.throws(() => parsePortSpec('8010-8000:80'), invalid(/host port range "8010-8000" ends before it starts/));
    assert.throws(() => parsePortSpec('8000-8002:80-81'), invalid(/host ports 8000-8002 are 3 ports but container ports 80-81 are 2 ports/));
    assert.throws(() => parsePortSpec('8080:80-81'), invalid(/host ports 8080 are 1 port but container ports 80-81 are 2 ports/));
    assert.throws(() => parsePortSpec('300.1.1.1:80:80'), invalid(/host address "300.1.1.1" is not an IP address/));
    assert.throws(() => parsePortSpec('::1:8080:80'), invalid(/in brackets/));
    assert.throws(() => parsePortSpec('[::1:8080:80'), invalid(/never closed/));
    assert.throws(() => parsePortSpec('[10.0.0.1]:80:80'), invalid(/not an IPv6 address/));
    assert.throws(() => parsePortSpec('[::1]:80'), invalid(/expected \[IPv6\]:hostPort:containerPort/));
    assert.throws(() => parsePortSpec('1.2.3.4:80:80:80'), invalid(/too many ":"/));
  });

  it('refuses an IPv6 zone id in the host address (issue 13)', () => {
    for (const spec of ['[fe80::1%eth0]:8080:80', '[fe80::1%eth0]::80/udp', '[fe80::1%25eth0]:8080:80', '[fe80::1%]:8080:80']) {
      assert.throws(() => parsePortSpec(spec), invalid(/host address "fe80::1%.*" has a zone id .*a host binding takes no zone; give the address alone, e\.g\. \[fe80::1\]/), spec);
    }
    assert.throws(() => parsePortSpec('fe80::1%eth0:8080:80'), invalid(/too many ":"/));
    assert.deepEqual(parsePortSpec('[fe80::1]:8080:80'), [{ proto: 'tcp', hostIp: 'fe80::1', hostPort: 8080, containerPort: 80 }]);
  });
});

describe('pickFreePort', () => {
  it('picks the lowest port neither taken nor bound, and says when the range is full', () => {
    // Ports bound by sockets of this machine are skipped too, so use a taken set that covers the start.
    const taken = new Set([DYNAMIC_PORT_RANGE.start, DYNAMIC_PORT_RANGE.start + 1]);
    const p = pickFreePort(DYNAMIC_PORT_RANGE, taken, 'tcp');
    assert.ok(p >= DYNAMIC_PORT_RANGE.start + 2 && p <= DYNAMIC_PORT_RANGE.end);
    assert.throws(() => pickFreePort({ start: 40000, end: 40001 }, new Set([40000, 40001]), 'udp'), (e: unknown) => e instanceof StrandError && e.code === 'exhausted' && /no free udp host port in 40000-40001/.test(e.message));
    assert.throws(() => pickFreePort({ start: 10, end: 5 }, new Set(), 'tcp'), invalid(/invalid port range 10-5/));
  });
});
