// resolv.conf → the result's dns, as host-local's resolvConf option does:
// nameserver lines, search (the last one wins, as in the resolver), domain
// and options; comments and unknown lines are skipped.
import type { CniDns } from '../protocol/types.js';

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
