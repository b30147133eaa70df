// The strand-ipam executable: `strand cni install` bundles this file (as
// CommonJS, so no top-level await).
import { runPlugin } from './skel.js';
import { ipamHandlers } from './ipam-plugin.js';

runPlugin(ipamHandlers).then((code) => process.exit(code));
