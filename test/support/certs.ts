// Throwaway TLS material for tests, made with the openssl command line in a
// fresh temp dir: a CA, a server certificate it signs (SAN IP:127.0.0.1 and
// DNS:localhost), a client certificate it signs, and a second, unrelated CA
// for "the server's certificate is not signed by the CA I was given" cases.
// remove() deletes the dir; removeAllCerts() is the safety net for after().

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestCerts {
  readonly dir: string;
  /** CA certificate that signed the server and client certificates. */
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** Client certificate (CN strand-client) and key, for servers that verify clients. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed nothing here: verifying the server with it must fail. */
  readonly otherCa: string;
  /** Deletes the dir and everything in it. */
  remove(): void;
}

const live = new Set<TestCerts>();

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('openssl is missing: run "bash scripts/setup.sh" to install it');
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

/** A self-signed CA certificate and its key, as NAME.crt and NAME.key. */
async function makeCa(dir: string, name: string, cn: string): Promise<void> {
  await openssl(dir, [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
}

/** A leaf certificate for `cn` signed by CA `ca`, as NAME.crt and NAME.key. */
async function makeLeaf(dir: string, name: string, ca: string, cn: string, extensions: string[]): Promise<void> {
  await openssl(dir, [
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`,
  ]);
  fs.writeFileSync(path.join(dir, `${name}.ext`), `${extensions.join('\n')}\n`);
  await openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', String(Date.now()),
    '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`,
  ]);
}

export async function makeCerts(): Promise<TestCerts> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'strand-certs-'));
  const file = (name: string) => path.join(dir, name);
  const certs: TestCerts = {
    dir,
    ca: file('ca.crt'),
    serverCert: file('server.crt'),
    serverKey: file('server.key'),
    clientCert: file('client.crt'),
    clientKey: file('client.key'),
    otherCa: file('other-ca.crt'),
    remove: () => {
      live.delete(certs);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(certs);
  try {
    await makeCa(dir, 'ca', 'strand test CA');
    await makeCa(dir, 'other-ca', 'strand unrelated CA');
    await makeLeaf(dir, 'server', 'ca', 'localhost', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      // etcd and redis-server also present this certificate as clients (peers, replicas).
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ]);
    await makeLeaf(dir, 'client', 'ca', 'strand-client', [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=clientAuth',
    ]);
  } catch (err) {
    certs.remove();
    throw err;
  }
  return certs;
}

/** Removes every cert dir makeCerts() made and remove() has not removed yet. */
export function removeAllCerts(): void {
  for (const c of [...live]) c.remove();
}
