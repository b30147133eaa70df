// The `strand` command: parses the command line and calls the controller.
import { readFileSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import type { Controller } from '../core/controller.js';
import { networkCommand } from './network.js';
import { runCommand } from './run.js';
import { gcCommand, psCommand, rmCommand } from './sandboxes.js';
import { daemonCommand } from './daemon.js';
import { cniCommand } from './cni.js';
import { storeCommand } from './store.js';

const HELP = `usage: strand [--store URL] COMMAND [OPTIONS]

Container networking: bridge, macvlan, overlay (VXLAN across hosts), host and
none networks and shared sandboxes, with IPAM, a key-value store and CNI plugins.

Commands:
  network create|ls|inspect|rm|connect|disconnect|prune   manage networks
  run [-d] [--network N] [-p SPEC]... -- CMD ARGS...      run a command in a new sandbox
  ps                                                      list sandboxes
  rm [-f] NAME...                                         remove sandboxes
  gc                                                      remove what killed runs left behind
  daemon [--advertise-addr IP ...]                        run the per-host agent (overlay peers with the address)
  daemon dump                                             print this host's overlay peers, desired and actual
  cni install --dir DIR                                   write the CNI plugin executables
  store salvage [--store local:///DIR] --out NEW_DIR      copy what is intact of a damaged local store to a new one
  version                                                 print strand's version
  help                                                    show this help

Store URLs (--store or STRAND_STORE): local:///var/lib/strand (default),
etcd://host:port[,host:port], redis://host:port
`;

/** Exit codes: 1 for a refused request, 2 for a bad command line, 3 for a retryable failure. */
function exitCode(err: StrandError): number {
  if (err.code === 'invalid') return 2;
  return err.retryable ? 3 : 1;
}

export async function main(argv: string[]): Promise<void> {
  let store: string | undefined;
  while (argv[0]?.startsWith('--store')) {
    const [flagPart, inline] = argv[0].split('=', 2);
    if (flagPart !== '--store') break;
    store = inline ?? argv[1];
    argv = argv.slice(inline === undefined ? 2 : 1);
  }
  let controller: Controller | undefined;
  const ctl = async (): Promise<Controller> => {
    if (!controller) {
      const { openController } = await import('../runtime/index.js');
      // The daemon lives on: its veth deletions go to a worker thread, after the answer.
      controller = await openController({ ...(store ? { store } : {}), backgroundLinkDeletes: command === 'daemon' });
    }
    return controller;
  };
  const [command = 'help', ...rest] = argv;
  try {
    switch (command) {
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(HELP);
        break;
      case 'version':
      case '--version': {
        const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
        console.log(pkg.version);
        break;
      }
      case 'network':
        await networkCommand(ctl, rest);
        break;
      case 'run':
        await runCommand(ctl, rest);
        break;
      case 'ps':
        await psCommand(ctl, rest);
        break;
      case 'rm':
        await rmCommand(ctl, rest);
        break;
      case 'gc':
        await gcCommand(ctl, rest);
        break;
      case 'daemon':
        await daemonCommand(ctl, rest);
        break;
      case 'cni':
        await cniCommand(rest);
        break;
      case 'store':
        await storeCommand(rest, store);
        break;
      default:
        throw new StrandError('invalid', `unknown command "${command}"; run "strand --help" for the list`);
    }
  } catch (err) {
    if (!(err instanceof StrandError)) throw err;
    process.stderr.write(`strand: ${err.message}\n`);
    process.exitCode = exitCode(err);
  } finally {
    await controller?.close();
  }
}
