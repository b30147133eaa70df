// Reading a sysfs CPU mask back, as the kernel reads it, for tests that check
// the masks strand writes.

/** A mask ("3", "80,00000001": comma-separated 32-bit hex groups) as the CPU numbers whose bits it sets. */
export function maskCpus(mask: string): number[] {
  const value = BigInt(`0x${mask.trim().split(',').map((g) => g.padStart(8, '0')).join('')}`);
  const cpus: number[] = [];
  for (let cpu = 0; 1n << BigInt(cpu) <= value; cpu++) if (value & (1n << BigInt(cpu))) cpus.push(cpu);
  return cpus;
}
