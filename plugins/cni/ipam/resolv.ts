// resolv.conf → the result's dns, as host-local's resolvConf option does:
// nameserver lines, search (the last one wins, as in the resolver), domain
// and options; comments and unknown lines are skipped.
import { closeSync, constants, fstatSync, openSync, readSync, readlinkSync, statfsSync, type Stats } from 'node:fs';
import { CniError, CNI_CODES, type CniDns } from '../protocol/types.js';

/** The most of a resolv.conf strand-ipam reads: the resolver's own files are a few hundred bytes. */
export const MAX_RESOLV_CONF = 64 << 10;

/** Kernel pseudo file systems whose "regular" files are not data (statfs f_type). */
const PSEUDO_FS: Record<number, string> = {
  0x9fa0: 'proc', 0x62656572: 'sysfs', 0x64626720: 'debugfs', 0x74726163: 'tracefs', 0x73636673: 'securityfs', 0x27e0eb: 'cgroup', 0x63677270: 'cgroup2', 0xcafe4a11: 'bpf', 0x6e736673: 'nsfs',
};

function kind(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a regular file';
}

/**
 * Reads the resolvConf file, which the plugin (root) reads on a config's say:
 * only a regular file of at most MAX_RESOLV_CONF bytes, not one of /proc,
 * /sys or another kernel pseudo file system. It is opened first (non-blocking,
 * so a FIFO cannot hang the plugin) and the opened file itself is checked, so
 * a path swapped in between changes nothing. Code 7 for a file of the wrong
 * kind or size, 5 when it cannot be read.
 */
export function readResolvConf(path: string): string {
  const refuse = (why: string) => new CniError(CNI_CODES.invalidConfig, `ipam.resolvConf: ${path} ${why}; point resolvConf at a resolv.conf file`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new CniError(CNI_CODES.io, `ipam.resolvConf: cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw refuse(`is ${kind(st)}, not a regular file`);
    const self = `/proc/self/fd/${fd}`;
    let real = path;
    try {
      real = readlinkSync(self);
    } catch {
      // No /proc: the file system check below is skipped with it.
    }
    if (/^\/(proc|sys)(\/|$)/.test(real)) throw refuse(`is in /${real.split('/')[1]}, a kernel file, not a regular file`);
    let fsType: number | undefined;
    try {
      fsType = statfsSync(self).type;
    } catch {
      fsType = undefined;
    }
    if (fsType !== undefined && Object.hasOwn(PSEUDO_FS, fsType)) throw refuse(`is on ${PSEUDO_FS[fsType]}, a kernel file system, not a regular file`);
    if (st.size > MAX_RESOLV_CONF) throw refuse(`is ${st.size} bytes; at most ${MAX_RESOLV_CONF} (64 KiB) are read`);
    // Read one byte past the limit, in case the file grew since fstat.
    const buf = Buffer.alloc(MAX_RESOLV_CONF + 1);
    let got = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, got, buf.length - got, null);
      } catch (err) {
        throw new CniError(CNI_CODES.io, `ipam.resolvConf: cannot read ${path}: ${(err as Error).message}`);
      }
      if (n === 0) break;
      got += n;
      if (got > MAX_RESOLV_CONF) throw refuse(`is over ${MAX_RESOLV_CONF} bytes (64 KiB), the most that is read`);
    }
    return buf.subarray(0, got).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export function parseResolvConf(text: string): CniDns {
  const dns: CniDns = {};
  const nameservers: string[] = [];
  const options: string[] = [];
  for (const line of text.split('\n')) {
    const fields = line.replace(/[#;].*$/, '').trim().split(/\s+/).filter((f) => f !== '');
    if (fields.length < 2) continue;
    const [key, ...rest] = fields as [string, ...string[]];
    if (key === 'nameserver') nameservers.push(rest[0]!);
    else if (key === 'domain') dns.domain = rest[0]!;
    else if (key === 'search') dns.search = rest;
    else if (key === 'options') options.push(...rest);
  }
  if (nameservers.length) dns.nameservers = nameservers;
  if (options.length) dns.options = options;
  return dns;
}
