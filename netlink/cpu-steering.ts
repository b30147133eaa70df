// Per-CPU steering of a veth pair's traffic (XPS on the sending end, RPS on
// the receiving end), and the CPU masks sysfs takes for it.
import { readFileSync } from 'node:fs';
import { StrandError } from '../common/errors.js';
import type { NetNs } from './namespace.js';
import { writeDeviceSysfs } from './device-sysfs.js';

/** A set of CPU numbers as the hex mask sysfs takes ("d0f"), in comma-separated 32-bit groups. */
export function cpuMask(cpus: Iterable<number>): string {
  let mask = 0n;
  for (const cpu of cpus) mask |= 1n << BigInt(cpu);
  const hex = mask.toString(16);
  const groups: string[] = [];
  for (let end = hex.length; end > 0; end -= 8) groups.unshift(hex.slice(Math.max(0, end - 8), end));
  return groups.join(',');
}

/** A CPU list as the kernel prints it ("0-3,8,10-11") as CPU numbers. */
export function parseCpuList(list: string): number[] {
  const cpus: number[] = [];
  for (const part of list.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new StrandError('invalid', `invalid CPU list "${list}"`);
    const [from, to] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (to < from) throw new StrandError('invalid', `invalid CPU range "${part}" in "${list}"`);
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu);
  }
  return cpus;
}

/** The online CPUs (not per namespace, so the usual /sys tells). */
export function onlineCpus(): number[] {
  return parseCpuList(readFileSync('/sys/devices/system/cpu/online', 'utf8'));
}

/**
 * Cross-CPU steering for a veth pair with `queues` queues per end: a packet
 * sent on CPU c leaves the sending end on transmit queue c mod queues (XPS),
 * arrives on the same-numbered receive queue of the other end, and RPS hands
 * it to one of the CPUs that do not send on that queue. So whatever comes
 * after the veth never runs on the CPU of the thread that sent it. A plain
 * flow-hash RPS would put a flow back on its sender's CPU one time in N.
 */
export interface SteeringPlan {
  queues: number;
  /** Per queue: the CPUs that send on it (the sending end's xps_cpus). */
  xps: string[];
  /** Per queue: the CPUs that process what arrives on it (the receiving end's rps_cpus). */
  rps: string[];
}

/** The plan for these CPUs with at most maxQueues queues; none with a single CPU, where there is nowhere else to go. */
export function steeringPlan(cpus: number[], maxQueues = 8): SteeringPlan | undefined {
  if (cpus.length < 2) return undefined;
  const queues = Math.min(cpus.length, maxQueues);
  const senders = Array.from({ length: queues }, (_, q) => cpus.filter((_, i) => i % queues === q));
  return {
    queues,
    xps: senders.map((s) => cpuMask(s)),
    rps: senders.map((s) => cpuMask(cpus.filter((c) => !s.includes(c)))),
  };
}

/** Applies a plan to a veth pair made with plan.queues queues: the sending end (in `senderNs`, or here) and the receiving end here. */
export function applySteering(plan: SteeringPlan, sender: { device: string; ns?: NetNs }, receiver: string): void {
  writeDeviceSysfs(sender.device, plan.xps.map((mask, q) => [`queues/tx-${q}/xps_cpus`, mask]), sender.ns);
  writeDeviceSysfs(receiver, plan.rps.map((mask, q) => [`queues/rx-${q}/rps_cpus`, mask]));
}
