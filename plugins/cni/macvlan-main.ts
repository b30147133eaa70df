// The strand-macvlan executable: `strand cni install` bundles this file.
import { runPlugin } from './skel.js';
import { macvlanHandlers } from './macvlan.js';

runPlugin(macvlanHandlers()).then((code) => process.exit(code));
