// The reaper's thread: deletes each batch of link names it is sent with one
// group delete, and answers with the names it could not delete and why. A
// failed batch is retried name by name, so one bad name fails only itself.
import { parentPort, workerData } from 'node:worker_threads';
import { Netlink } from './index.js';
import { openNetns } from './namespace.js';

const { netns } = workerData as { netns?: string };
const nl = Netlink.open(netns ? openNetns(netns) : undefined);

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

parentPort!.on('message', (names: string[]) => {
  const failed: Record<string, string> = {};
  try {
    nl.links.deleteMany(names, { missingOk: true });
  } catch {
    for (const name of names) {
      try {
        nl.links.delete(name, { missingOk: true });
      } catch (err) {
        failed[name] = message(err);
      }
    }
  }
  parentPort!.postMessage({ failed });
});
