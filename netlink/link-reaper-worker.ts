// The reaper's thread: deletes each batch of link names it is sent with one
// group delete and answers with nothing, or with the error.
import { parentPort, workerData } from 'node:worker_threads';
import { Netlink } from './index.js';
import { openNetns } from './namespace.js';

const { netns } = workerData as { netns?: string };
const nl = Netlink.open(netns ? openNetns(netns) : undefined);

parentPort!.on('message', (names: string[]) => {
  try {
    nl.links.deleteMany(names, { missingOk: true });
    parentPort!.postMessage({});
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
});
