// Sandbox records and their name index.
import type { SandboxRecord } from '../types.js';
import type { KeySpace } from './space.js';

export class SandboxRecords {
  constructor(private readonly s: KeySpace) {}

  async sandboxNameTaken(name: string): Promise<boolean> {
    return (await this.s.store.get(this.s.key('sandbox-names', name))) !== undefined;
  }

  listSandboxes(): Promise<SandboxRecord[]> {
    return this.s.listJson<SandboxRecord>('sandboxes');
  }

  getSandbox(id: string): Promise<SandboxRecord | undefined> {
    return this.s.getJson<SandboxRecord>(this.s.key('sandboxes', id));
  }

  async findSandbox(ref: string): Promise<SandboxRecord | undefined> {
    const byName = await this.s.store.get(this.s.key('sandbox-names', ref));
    if (byName) return this.getSandbox(byName.value);
    return this.s.byIdPrefix<SandboxRecord>(`${this.s.prefix}sandboxes/`, ref, 'sandbox');
  }

  async createSandbox(rec: SandboxRecord): Promise<void> {
    await this.s.createNamed('sandboxes', 'sandbox-names', rec, 'sandbox');
  }

  async updateSandbox(rec: SandboxRecord): Promise<void> {
    await this.s.store.put(this.s.key('sandboxes', rec.id), JSON.stringify(rec));
  }

  async deleteSandbox(rec: SandboxRecord): Promise<void> {
    await this.s.store.txn([], [
      { op: 'delete', key: this.s.key('sandboxes', rec.id) },
      { op: 'delete', key: this.s.key('sandbox-names', rec.name) },
    ]);
  }
}
