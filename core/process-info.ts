// Is a process still the one we recorded? A pid alone can be reused, so the
// start time from /proc/PID/stat is recorded beside it.
import { readFileSync } from 'node:fs';

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the command name's closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

export function processAlive(pid: number, startTime?: string): boolean {
  const now = processStartTime(pid);
  if (now === undefined) return false;
  return !startTime || now === startTime;
}

/** SIGTERM, then SIGKILL after graceMs if the process (the same one: start time checked) still runs. */
export async function stopProcess(pid: number, startTime: string | undefined, graceMs = 5000): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    if (!processAlive(pid, startTime)) return;
    try {
      process.kill(pid, sig);
    } catch {
      // gone between the check and the signal
    }
  };
  signal('SIGTERM');
  for (let waited = 0; waited < graceMs && processAlive(pid, startTime); waited += 50) await new Promise((r) => setTimeout(r, 50));
  signal('SIGKILL');
}
