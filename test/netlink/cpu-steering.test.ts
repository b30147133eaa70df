// Per-CPU steering plans and the CPU masks sysfs takes, without a kernel.
import assert from 'node:assert/strict';
import { cpuMask, parseCpuList, steeringPlan } from '../../netlink/cpu-steering.js';
import { maskCpus } from '../support/cpu-masks.js';

describe('CPU steering', () => {
  it('reads the kernel\'s CPU lists', () => {
    assert.deepEqual(parseCpuList('0-3,8,10-11\n'), [0, 1, 2, 3, 8, 10, 11]);
    assert.deepEqual(parseCpuList('0'), [0]);
    assert.throws(() => parseCpuList('0-x'), /invalid CPU list "0-x"/);
    assert.throws(() => parseCpuList('5-2'), /invalid CPU range "5-2"/);
  });

  it('writes masks in 32-bit groups, as sysfs takes them', () => {
    assert.equal(cpuMask([0, 1]), '3');
    assert.equal(cpuMask([0, 1, 2, 3, 8, 10, 11]), 'd0f');
    assert.equal(cpuMask([0, 39]), '80,00000001');
    assert.equal(cpuMask([32]), '1,00000000');
  });

  it('needs two CPUs: on one there is nowhere else to go', () => {
    assert.equal(steeringPlan([0]), undefined);
    assert.equal(steeringPlan([]), undefined);
  });

  it('sends every CPU on one queue, and hands what arrives on a queue to every CPU but its senders', () => {
    for (const cpus of [[0, 1], [0, 1, 2, 3], [0, 2, 5], Array.from({ length: 12 }, (_, i) => i), Array.from({ length: 40 }, (_, i) => i)]) {
      const plan = steeringPlan(cpus)!;
      assert.equal(plan.queues, Math.min(cpus.length, 8));
      assert.equal(plan.xps.length, plan.queues);
      assert.equal(plan.rps.length, plan.queues);
      const senders = plan.xps.map(maskCpus);
      // Each online CPU sends on exactly one queue.
      assert.deepEqual(senders.flat().sort((a, b) => a - b), cpus);
      plan.rps.forEach((mask, q) => {
        const handlers = maskCpus(mask);
        assert.ok(handlers.length > 0, `queue ${q} of ${cpus.length} CPUs has handlers`);
        assert.ok(handlers.every((c) => !senders[q]!.includes(c)), `queue ${q}: no sender handles its own packets`);
        assert.deepEqual([...handlers, ...senders[q]!].sort((a, b) => a - b), cpus);
      });
    }
  });

  it('pairs the two CPUs of a two-CPU machine crosswise', () => {
    assert.deepEqual(steeringPlan([0, 1]), { queues: 2, xps: ['1', '2'], rps: ['2', '1'] });
  });
});
