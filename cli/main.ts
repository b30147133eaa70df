// The `strand` command. Commands are added as the layers below them land.
import { readFileSync } from 'node:fs';

const HELP = `usage: strand COMMAND [OPTIONS]

Container networking: bridge, host, none and container networks on one host,
macvlan and VXLAN overlay across hosts, IPAM and a key-value store.

Commands:
  help, --help      show this help
  version           print strand's version

Store URLs (--store or STRAND_STORE): local:///var/lib/strand (default),
etcd://host:port[,host:port], redis://host:port
`;

export async function main(argv: string[]): Promise<void> {
  const [command = 'help'] = argv;
  switch (command) {
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return;
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
      console.log(pkg.version);
      return;
    }
    default:
      process.stderr.write(`strand: unknown command "${command}"; run "strand --help" for the list\n`);
      process.exitCode = 2;
  }
}
