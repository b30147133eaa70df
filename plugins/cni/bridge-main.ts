// The strand-bridge executable: `strand cni install` bundles this file.
import { runPlugin } from './skel.js';
import { bridgeHandlers } from './bridge.js';

runPlugin(bridgeHandlers()).then((code) => process.exit(code));
