// Entry point of the strand-ipam executable. Exits explicitly once stdout is
// flushed: an open store client must not keep the plugin alive.
import { ipamHandlers } from './ipam-plugin.js';
import { runPlugin } from './skel.js';

const code = await runPlugin(ipamHandlers);
process.stdout.write('', () => process.exit(code));
