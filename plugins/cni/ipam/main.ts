// The strand-ipam executable: `strand cni install` bundles this file (as
// CommonJS, so no top-level await).
import { runPlugin } from '../protocol/skel.js';
import { ipamHandlers } from './plugin.js';

runPlugin(ipamHandlers).then((code) => process.exit(code));
