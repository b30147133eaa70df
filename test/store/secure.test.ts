// The etcd and Redis backends against real servers that serve TLS only, that
// verify client certificates, and that require a user and password: the
// conformance suite over each, then the ways a wrong URL must fail (quickly,
// with a message that names the problem and never the password).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { StrandError, isStrandError } from '../../common/errors.js';
import { openStore } from '../../store/index.js';
import type { Store, WatchEvent } from '../../store/types.js';
import { makeCerts, type TestCerts } from '../support/certs.js';
import { startEtcd, startRedis, type ServerTls, type TestServer } from '../support/servers.js';
import { storeConformance } from './conformance.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ETCD_PASSWORD = 'r00t p@ss/word';
const REDIS_PASSWORD = 'tls+pass:word';

/** Opens `url` and makes one call; resolves with the StrandError it fails with, and how long that took. */
async function failure(
  url: string,
  expectCode: StrandError['code'] | Array<StrandError['code']>,
  stores: Store[],
): Promise<{ err: StrandError; ms: number }> {
  const codes = Array.isArray(expectCode) ? expectCode : [expectCode];
  const t0 = Date.now();
  try {
    const store = await openStore(url);
    stores.push(store);
    await store.put('secure/probe', 'x');
  } catch (err) {
    const ms = Date.now() - t0;
    assert.ok(isStrandError(err), `expected a StrandError, got ${String(err)}`);
    assert.ok(codes.includes(err.code), `expected ${codes.join(' or ')}, got ${err.code}: ${err.message}`);
    return { err, ms };
  }
  assert.fail(`${url}: expected ${codes.join(' or ')}, but the store worked`);
}

const q = (path: string) => encodeURIComponent(path);

describe('store backends over TLS and with authentication', function () {
  let certs: TestCerts;
  /** Every server this file starts; stopped in after() whatever happened. */
  const servers: TestServer[] = [];
  /** Stores opened by the failure tests; closed after each test. */
  const stores: Store[] = [];
  let serverTls: ServerTls;
  let mutualTls: ServerTls;

  before(async function () {
    this.timeout(30000);
    certs = await makeCerts();
    serverTls = { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey };
    mutualTls = { ...serverTls, clientCertAuth: true, clientCert: certs.clientCert, clientKey: certs.clientKey };
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });
  after(async function () {
    this.timeout(60000);
    for (const s of stores.splice(0)) await s.close().catch(() => undefined);
    await Promise.all(servers.map((s) => s.stop()));
    certs?.remove();
  });

  /** Starts a server in an outer before() and hands conformance a factory for it. */
  function conformanceOver(name: string, start: () => Promise<TestServer>): void {
    describe(name, function () {
      let server: TestServer | undefined;
      before(async function () {
        this.timeout(60000);
        server = await start();
        servers.push(server);
      });
      storeConformance(name, {
        server: true,
        setup: async () => {
          const s = server!;
          return {
            url: s.url,
            open: () => openStore(s.url),
            outage: { stop: () => s.kill(), start: () => s.restart() },
          };
        },
      });
    });
  }

  conformanceOver('etcd over TLS', () => startEtcd({ tls: serverTls }));
  conformanceOver('etcd over TLS with client certificates', () => startEtcd({ tls: mutualTls }));
  conformanceOver('etcd with user/password auth', () => startEtcd({ rootPassword: ETCD_PASSWORD }));
  conformanceOver('redis over TLS', () => startRedis({ tls: serverTls }));
  conformanceOver('redis over TLS with client certificates and a password', () =>
    startRedis({ tls: mutualTls, password: REDIS_PASSWORD }));

  describe('etcd failures and edge cases', function () {
    this.timeout(60000);
    let tlsEtcd: TestServer;
    let mtlsEtcd: TestServer;
    let authEtcd: TestServer;
    before(async function () {
      [tlsEtcd, mtlsEtcd, authEtcd] = await Promise.all([
        startEtcd({ tls: serverTls }),
        startEtcd({ tls: mutualTls }),
        // A short token lifetime, so a test can outlive its token.
        startEtcd({ tls: serverTls, rootPassword: ETCD_PASSWORD, authTokenTtl: 2 }),
      ]);
      servers.push(tlsEtcd, mtlsEtcd, authEtcd);
    });

    it('the URLs carry what the servers need', () => {
      assert.match(tlsEtcd.url, /^etcd:\/\/127\.0\.0\.1:\d+\?tls=1&ca=[^&]+$/);
      assert.match(mtlsEtcd.url, /&cert=.+&key=/);
      assert.match(authEtcd.url, /^etcd:\/\/root:r00t%20p%40ss%2Fword@127\.0\.0\.1:\d+\?tls=1&ca=/);
    });

    it('works over TLS with user/password auth, and the password stays out of store.url', async () => {
      const store = await openStore(authEtcd.url);
      stores.push(store);
      assert.equal(store.url.includes('r00t'), false, store.url);
      assert.match(store.url, /^etcd:\/\/\*\*\*@/);
      const rev = await store.put('secure/both', 'yes');
      assert.deepEqual(await store.get('secure/both'), { key: 'secure/both', value: 'yes', createRevision: rev, modRevision: rev });
    });

    it('keeps working after its auth token expires (re-authenticates with a fresh deadline)', async function () {
      // The token exchange once had one deadline fixed when the store was
      // opened: every re-authentication more than 3 s later failed at once.
      const p = `secure/${randomBytes(4).toString('hex')}/`;
      const store = await openStore(authEtcd.url);
      stores.push(store);
      const other = await openStore(authEtcd.url);
      stores.push(other);
      await store.put(`${p}a`, '1');
      const events: WatchEvent[] = [];
      const w = await store.watch(p, {}, (e) => events.push(e));
      const lease = await store.grantLease(30);
      await store.put(`${p}leased`, 'l', { lease: lease.id });
      await sleep(4500); // the 2 s tokens of both stores expire; and more than 3 s since open
      assert.equal((await store.get(`${p}a`))?.value, '1');
      await lease.renew();
      await other.put(`${p}b`, '2');
      for (let i = 0; i < 100 && !events.some((e) => e.type === 'put' && e.kv.key === `${p}b`); i++) await sleep(50);
      await w.cancel();
      assert.deepEqual(events.map((e) => (e.type === 'put' ? e.kv.key : `-${e.key}`)), [`${p}leased`, `${p}b`]);
      await lease.revoke();
      assert.equal(await store.get(`${p}leased`), undefined);
    });

    it('watches survive a restart of the server, which forgets every auth token', async function () {
      // etcd3 re-creates watch streams with the token it has; etcd cancels
      // such a watch, and etcd3 then creates no further watch on that stream.
      const p = `secure/${randomBytes(4).toString('hex')}/`;
      const store = await openStore(authEtcd.url);
      stores.push(store);
      const seen: string[] = [];
      const errors: string[] = [];
      const onError = (err: Error) => errors.push(err.message);
      for (const sub of ['a/', 'b/']) {
        await store.watch(`${p}${sub}`, { onError }, (e) => seen.push(e.type === 'put' ? e.kv.value : `-${e.key}`));
      }
      await store.put(`${p}a/1`, 'a-before');
      for (let i = 0; i < 100 && seen.length < 1; i++) await sleep(50);
      await authEtcd.kill();
      await authEtcd.restart();
      await sleep(3000); // no call from this store meanwhile: only the watches reconnect
      const other = await openStore(authEtcd.url);
      stores.push(other);
      await other.txn([], [{ op: 'put', key: `${p}a/2`, value: 'a-after' }, { op: 'put', key: `${p}b/2`, value: 'b-after' }]);
      for (let i = 0; i < 200 && seen.length < 3; i++) await sleep(50);
      assert.deepEqual(errors, []);
      assert.deepEqual(seen.sort(), ['a-after', 'a-before', 'b-after']);
    });

    it('a wrong password is refused as invalid, naming authentication and not the password', async () => {
      const url = authEtcd.url.replace(q(ETCD_PASSWORD), 'wrong-secret');
      const { err, ms } = await failure(url, 'invalid', stores);
      assert.match(err.message, /access denied.*authentication failed.*check the user and password/);
      assert.equal(err.message.includes('wrong-secret'), false, err.message);
      assert.equal(err.retryable, false);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('no credentials for a server with auth on is invalid, saying so', async () => {
      const { err } = await failure(authEtcd.url.replace(/root:[^@]*@/, ''), 'invalid', stores);
      assert.match(err.message, /authentication enabled.*user:password@/);
    });

    it('a server certificate the given CA did not sign fails fast as a TLS problem', async () => {
      const { err, ms } = await failure(tlsEtcd.url.replace(q(certs.ca), q(certs.otherCa)), 'invalid', stores);
      assert.match(err.message, /TLS handshake failed \(.*certificate.*\); check the ca=, cert= and key= files/);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('a server that wants a client certificate refuses a client without one, as a TLS problem', async () => {
      const { err } = await failure(`etcd://127.0.0.1:${mtlsEtcd.port}?tls=1&ca=${q(certs.ca)}`, 'invalid', stores);
      assert.match(err.message, /TLS handshake failed \(.*certificate/);
    });

    it('a missing CA, certificate or key file is invalid and names the path', async () => {
      for (const [what, url] of [
        ['CA', tlsEtcd.url.replace(q(certs.ca), q('/nonexistent/strand-ca.pem'))],
        ['certificate', mtlsEtcd.url.replace(q(certs.clientCert), q('/nonexistent/strand-ca.pem'))],
        ['key', mtlsEtcd.url.replace(q(certs.clientKey), q('/nonexistent/strand-ca.pem'))],
      ] as const) {
        const { err } = await failure(url, 'invalid', stores);
        assert.match(err.message, new RegExp(`cannot read ${what} file /nonexistent/strand-ca\\.pem`), err.message);
      }
    });

    it('a plain client against a TLS-only server fails quickly and hints at TLS', async () => {
      const { err, ms } = await failure(`etcd://127.0.0.1:${tlsEtcd.port}`, 'unavailable', stores);
      assert.match(err.message, /if the server serves TLS only, add \?tls=1/);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('a TLS client against a plain server fails quickly and names TLS', async () => {
      const plain = await startEtcd();
      servers.push(plain);
      const { err, ms } = await failure(`etcd://127.0.0.1:${plain.port}?tls=1&ca=${q(certs.ca)}`, 'unavailable', stores);
      assert.match(err.message, /closed the connection during the TLS handshake: if it does not serve TLS, remove tls=1/);
      assert.ok(ms < 3000, `${ms} ms`);
    });
  });

  describe('redis failures and edge cases', function () {
    this.timeout(60000);
    let tlsRedis: TestServer;
    let mtlsRedis: TestServer;
    before(async function () {
      [tlsRedis, mtlsRedis] = await Promise.all([
        startRedis({ tls: serverTls }),
        startRedis({ tls: mutualTls, password: REDIS_PASSWORD }),
      ]);
      servers.push(tlsRedis, mtlsRedis);
    });

    it('the URLs carry what the servers need', () => {
      assert.match(tlsRedis.url, /^rediss:\/\/127\.0\.0\.1:\d+\?ca=[^&]+$/);
      assert.match(mtlsRedis.url, /^rediss:\/\/:tls%2Bpass%3Aword@127\.0\.0\.1:\d+\?ca=.+&cert=.+&key=/);
    });

    it('redis://...?tls=1 is the same as rediss://, and the host may be a name', async () => {
      for (const url of [
        tlsRedis.url.replace(/^rediss:\/\/(.*)\?/, 'redis://$1?tls=1&'),
        tlsRedis.url.replace('127.0.0.1', 'localhost'),
      ]) {
        const store = await openStore(url);
        stores.push(store);
        await store.put('secure/forms', url);
        assert.equal((await store.get('secure/forms'))?.value, url);
      }
    });

    it('a wrong or missing password over TLS is invalid, naming authentication and not the password', async () => {
      for (const url of [mtlsRedis.url.replace(q(REDIS_PASSWORD), 'wrong-secret'), mtlsRedis.url.replace(/:[^@/]*@/, '')]) {
        const { err, ms } = await failure(url, 'invalid', stores);
        assert.match(err.message, /access denied \((WRONGPASS|NOAUTH).*check the password/);
        assert.equal(/wrong-secret|tls\+pass/.test(err.message), false, err.message);
        assert.ok(ms < 3000, `${ms} ms`);
      }
    });

    it('a server certificate the given CA did not sign fails fast as a TLS problem', async () => {
      const { err, ms } = await failure(tlsRedis.url.replace(q(certs.ca), q(certs.otherCa)), 'invalid', stores);
      assert.match(err.message, /TLS handshake failed \(.*certificate.*\); check the ca=, cert= and key= files/);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('without ca= the system roots do not trust a private CA: a TLS problem', async () => {
      const { err } = await failure(`rediss://127.0.0.1:${tlsRedis.port}`, 'invalid', stores);
      assert.match(err.message, /TLS handshake failed \(.*certificate/);
    });

    it('a server that wants a client certificate refuses a client without one, naming client certificates', async () => {
      // In TLS 1.3 the server checks the client's certificate after the
      // client has finished its handshake: the client reads either the
      // server's alert or, when the reset wins the race, only the reset.
      const url = `rediss://:${q(REDIS_PASSWORD)}@127.0.0.1:${mtlsRedis.port}?ca=${q(certs.ca)}`;
      const { err, ms } = await failure(url, ['invalid', 'unavailable'], stores);
      if (err.code === 'invalid') assert.match(err.message, /TLS handshake failed \(.*certificate required/);
      else assert.match(err.message, /reset the connection during or right after the TLS handshake: if it requires client certificates, give cert= and key=/);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('a missing CA file is invalid and names the path', async () => {
      const { err } = await failure(tlsRedis.url.replace(q(certs.ca), q('/nonexistent/strand-ca.pem')), 'invalid', stores);
      assert.match(err.message, /cannot read CA file \/nonexistent\/strand-ca\.pem/);
    });

    it('a plain client against a TLS-only server fails quickly and hints at TLS', async () => {
      const { err, ms } = await failure(`redis://127.0.0.1:${tlsRedis.port}`, 'unavailable', stores);
      assert.match(err.message, /if the server serves TLS only, use rediss:\/\/ or tls=1/);
      assert.ok(ms < 3000, `${ms} ms`);
    });

    it('a TLS client against a plain server fails in bounded time and names TLS', async () => {
      // redis-server reads the ClientHello as the start of an inline command
      // and waits for the rest: only the connect timeout ends it.
      const plain = await startRedis();
      servers.push(plain);
      const { err, ms } = await failure(`rediss://127.0.0.1:${plain.port}?ca=${q(certs.ca)}`, 'unavailable', stores);
      assert.match(err.message, /the TLS handshake did not finish: is the server serving TLS on this port\?/);
      assert.ok(ms < 5000, `${ms} ms`);
    });
  });
});
