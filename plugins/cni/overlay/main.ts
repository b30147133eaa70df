// The strand-overlay executable's Node fallback: `strand cni install` bundles
// this file. It runs only when no strand daemon answers, so every verb but
// VERSION fails with a clear error (the work needs the daemon's agent).
import { runPlugin } from '../protocol/skel.js';
import { overlayHandlers } from './plugin.js';

runPlugin(overlayHandlers()).then((code) => process.exit(code));
