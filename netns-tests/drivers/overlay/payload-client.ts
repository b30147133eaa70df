// The client half of the MTU tests, run inside a sandbox's namespace.
// usage: node payload-client.js echo HOST PORT SIZE   → "ok SIZE" when all came back equal
//        node payload-client.js http HOST PORT SIZE   → "ok SIZE" when the body matched the pattern
import { connect } from 'node:net';
import { get } from 'node:http';
import { randomBytes } from 'node:crypto';

const [mode, host = '', port = '0', sizeArg = '0'] = process.argv.slice(2);
const size = Number(sizeArg);
setTimeout(() => {
  console.log('TIMEOUT');
  process.exit(2);
}, 20000);

if (mode === 'echo') {
  const sent = randomBytes(size);
  const chunks: Buffer[] = [];
  const s = connect({ host, port: Number(port) }, () => s.end(sent));
  s.on('data', (d: Buffer) => chunks.push(d));
  s.on('error', (e) => {
    console.log(`ERR ${e.message}`);
    process.exit(1);
  });
  s.on('close', () => {
    const got = Buffer.concat(chunks);
    console.log(got.equals(sent) ? `ok ${got.length}` : `MISMATCH ${got.length}`);
    process.exit(got.equals(sent) ? 0 : 1);
  });
} else {
  get({ host, port: Number(port), path: `/bytes/${size}` }, (res) => {
    let n = 0;
    let bad = 0;
    res.on('data', (d: Buffer) => {
      for (let i = 0; i < d.length; i++) if (d[i] !== (n + i) % 251) bad++;
      n += d.length;
    });
    res.on('end', () => {
      console.log(n === size && bad === 0 ? `ok ${n}` : `MISMATCH ${n} bad ${bad}`);
      process.exit(n === size && bad === 0 ? 0 : 1);
    });
  }).on('error', (e) => {
    console.log(`ERR ${e.message}`);
    process.exit(1);
  });
}
