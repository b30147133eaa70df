// Is a process still the one we recorded? A pid alone can be reused, so the
// start time from /proc/PID/stat is recorded beside it.
import { readFileSync } from 'node:fs';

/** State and start time from /proc/PID/stat, or undefined when there is no such process. */
function stat(pid: number): { state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name's closing parenthesis: 3 (state) is first, 22 (starttime) the 20th.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, start: fields[19]! };
  } catch {
    return undefined;
  }
}

export function processStartTime(pid: number): string | undefined {
  return stat(pid)?.start;
}

/** Whether the process runs (a zombie waiting to be reaped does not) and is the one that started at startTime. */
export function processAlive(pid: number, startTime?: string): boolean {
  const now = stat(pid);
  if (!now || now.state === 'Z' || now.state === 'X') return false;
  return !startTime || now.start === startTime;
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
