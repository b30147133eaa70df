// The strand-bridge executable: `strand cni install` bundles this file.
import { runPlugin } from '../protocol/skel.js';
import { bridgeHandlers } from './plugin.js';

runPlugin(bridgeHandlers()).then((code) => process.exit(code));
