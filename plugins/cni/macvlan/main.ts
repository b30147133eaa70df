// The strand-macvlan executable: `strand cni install` bundles this file.
import { runPlugin } from '../protocol/skel.js';
import { macvlanHandlers } from './plugin.js';

runPlugin(macvlanHandlers()).then((code) => process.exit(code));
