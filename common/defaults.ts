// Where strand keeps things on a host when nobody says otherwise: one place,
// so the daemon, the commands and the plugins always agree.

/** Per-host runtime state (sandbox files, the CNI socket, locks): tmpfs, gone at boot. */
export const DEFAULT_RUN_DIR = '/run/strand';

/** The run dir this process uses: $STRAND_RUN_DIR, else the default. */
export function runDir(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): string {
  return env.STRAND_RUN_DIR || DEFAULT_RUN_DIR;
}
