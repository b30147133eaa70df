// The plugin transport as dockerd uses it: POSTs over a unix socket, empty
// bodies, JSON answers always, 500 with Err and Error, 404 for the unknown.
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { StrandError } from '../../../common/errors.js';
import { captures } from './captures.js';
import { post, removeDir, serve } from './fixtures.js';

describe('docker plugin transport', () => {
  let dir: string;
  let server: Server;
  let socket: string;
  const seen: unknown[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strand-docker-http-'));
    ({ socket, server } = await serve(dir, 'p', {
      'Plugin.Activate': async (b) => (seen.push(b), { Implements: ['NetworkDriver'] }),
      'NetworkDriver.Leave': async () => {
        throw new StrandError('not-found', 'endpoint abc is unknown');
      },
      'NetworkDriver.Join': async () => {
        throw new TypeError('a bug');
      },
      'NetworkDriver.DeleteEndpoint': async (b) => (seen.push(b), {}),
    }));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    removeDir(dir);
  });

  it('makes the socket mode 0600', () => {
    assert.equal(statSync(socket).mode & 0o777, 0o600);
  });

  it('answers Activate with no body, as dockerd sends it (Content-Length 0, no Content-Type)', async () => {
    const activate = captures().find((c) => c.path === '/Plugin.Activate')!;
    assert.equal(activate.headers['Content-Length'], '0');
    const a = await post(socket, '/Plugin.Activate', null);
    assert.equal(a.status, 200);
    assert.deepEqual(a.json, { Implements: ['NetworkDriver'] });
    assert.equal(seen.at(-1), undefined);
    assert.match(a.contentType, /json/);
  });

  it('hands the parsed body (JSON plus newline) to the handler', async () => {
    const b = { NetworkID: 'n', EndpointID: 'e' };
    assert.equal((await post(socket, '/NetworkDriver.DeleteEndpoint', b)).status, 200);
    assert.deepEqual(seen.at(-1), b);
  });

  it('fails with 500 and both Err and Error, the message unchanged', async () => {
    const a = await post(socket, '/NetworkDriver.Leave', {});
    assert.equal(a.status, 500);
    assert.deepEqual(a.json, { Err: 'endpoint abc is unknown', Error: 'endpoint abc is unknown' });
    const bug = await post(socket, '/NetworkDriver.Join', {});
    assert.equal(bug.status, 500);
    assert.equal(bug.json.Err, 'a bug');
  });

  it('answers 404 with a JSON body for methods it does not implement', async () => {
    for (const path of ['/NetworkDriver.ProgramExternalConnectivity', '/IpamDriver.GetCapabilities', '/nope', '/toString']) {
      const a = await post(socket, path, {});
      assert.equal(a.status, 404, path);
      assert.match(String(a.json.Err), /not implemented/);
      assert.equal(a.json.Err, a.json.Error);
    }
  });

  it('refuses a body that is not JSON with a JSON error', async () => {
    const { request } = await import('node:http');
    const a = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ socketPath: socket, path: '/NetworkDriver.DeleteEndpoint', method: 'POST' }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end('{not json');
    });
    assert.equal(a.status, 400);
    assert.match(JSON.parse(a.text).Err, /not JSON/);
  });

  it('answers a body over 4 MiB with 413 and Docker\'s error JSON naming the limit, then closes (issue 13)', async () => {
    const { request } = await import('node:http');
    const send = (body: Buffer) => new Promise<{ status: number; text: string; connection: string | undefined }>((resolve, reject) => {
      const req = request({ socketPath: socket, path: '/NetworkDriver.DeleteEndpoint', method: 'POST', headers: { 'Content-Length': body.length } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text, connection: res.headers.connection }));
      });
      req.on('error', reject);
      req.end(body);
    });
    const big = await send(Buffer.alloc((4 << 20) + 1, 0x20));
    assert.equal(big.status, 413);
    const json = JSON.parse(big.text) as { Err: string; Error: string };
    assert.match(json.Err, /^strand: POST NetworkDriver\.DeleteEndpoint: the request body is over 4194304 bytes \(4 MiB\), the most the plugin reads; send a smaller request$/);
    assert.equal(json.Error, json.Err);
    assert.equal(big.connection, 'close');
    // At the limit the body is read and handed over; the server still answers after the refusal.
    const exact = { NetworkID: 'n', EndpointID: 'e', Pad: '' };
    const pad = (4 << 20) - Buffer.byteLength(JSON.stringify(exact));
    const body = Buffer.from(JSON.stringify({ ...exact, Pad: 'x'.repeat(pad) }));
    assert.equal(body.length, 4 << 20);
    const ok = await send(body);
    assert.equal(ok.status, 200);
    assert.equal((seen.at(-1) as { Pad: string }).Pad.length, pad);
  });
});
