// iptables-restore input for one family: what a plan adds or removes, written
// so that iptables-restore --noflush applies it as one batch. The fast forms
// assume the expected state (and fail atomically per table if it is not);
// the repair forms are computed from a fresh iptables-save.
import { basePlan, TABLES, type ObjectPlan, type Rule, type Table } from './rules.js';
import { isStrandChain, isStrandTag, type Saved, type SavedTable } from './save.js';
import type { Family } from './backend.js';
import { BASE_TAG } from './names.js';

/** Table name -> lines (without *table / COMMIT). */
export type Script = Map<Table | string, string[]>;

const SAFE = /^[A-Za-z0-9_.:/!+\-[\],=]+$/;
const quote = (a: string): string => (SAFE.test(a) ? a : `"${a.replace(/(["\\])/g, '\\$1')}"`);
const ruleLine = (op: '-A' | '-I' | '-D', r: Rule): string => [op, r.chain, ...r.args].map(quote).join(' ');

function push(script: Script, table: string, lines: string[]): void {
  if (!lines.length) return;
  const cur = script.get(table);
  if (cur) cur.push(...lines);
  else script.set(table, [...lines]);
}

export function render(script: Script): string {
  let out = '';
  for (const [table, lines] of script) if (lines.length) out += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
  return out;
}

export const isEmptyScript = (s: Script): boolean => [...s.values()].every((l) => l.length === 0);

/** Lines that create the plan's chains, fill them and add its jumps; `existing` chains (already flushed) are reused. */
function addLines(plan: ObjectPlan, table: Table, existing: Set<string> = new Set()): string[] {
  const t = plan.tables[table];
  if (!t) return [];
  return [
    ...t.chains.filter((c) => !existing.has(c)).map((c) => `-N ${c}`),
    ...t.rules.map((r) => ruleLine('-A', r)),
    ...t.jumps.map((r) => ruleLine(r.insert ? '-I' : '-A', r)),
  ];
}

/** Fast add: fails (atomically per table) if any of the plan's chains exists already. */
export function addScript(plan: ObjectPlan): Script {
  const s: Script = new Map();
  for (const table of TABLES) push(s, table, addLines(plan, table));
  return s;
}

/** Fast remove: fails if any jump or chain of the plan is missing. */
export function removeScript(plan: ObjectPlan): Script {
  const s: Script = new Map();
  for (const table of TABLES) {
    const t = plan.tables[table];
    if (!t) continue;
    push(s, table, [...t.jumps.map((r) => ruleLine('-D', r)), ...t.chains.map((c) => `-F ${c}`), ...t.chains.map((c) => `-X ${c}`)]);
  }
  return s;
}

/**
 * Deletes, from what is installed, every rule carrying one of `tags` or
 * jumping into one of `owned`; and flushes (and, unless `keep`s them,
 * deletes) the owned chains present.
 */
function purgeLines(saved: SavedTable | undefined, owned: (chain: string) => boolean, tags: (tag: string | undefined) => boolean, keep: Set<string> = new Set()): { lines: string[]; present: Set<string> } {
  if (!saved) return { lines: [], present: new Set() };
  const present = new Set([...saved.chains].filter(owned));
  const lines: string[] = [];
  for (const r of saved.rules) {
    if (present.has(r.chain)) continue; // goes with its chain
    if (tags(r.tag) || (r.target !== undefined && owned(r.target))) lines.push('-D' + r.line.slice(2));
  }
  for (const c of present) lines.push(`-F ${c}`);
  for (const c of present) if (!keep.has(c)) lines.push(`-X ${c}`);
  return { lines, present };
}

const chainsOf = (plan: ObjectPlan): Set<string> => new Set(TABLES.flatMap((t) => plan.tables[t]?.chains ?? []));

/** Lines that add whatever of the base (chains, jumps) is missing. */
function baseRepairLines(saved: Saved, family: Family, table: Table): string[] {
  const base = basePlan(family).tables[table];
  if (!base) return []; // strand has no base in this table (raw)
  const have = saved.get(table);
  const lines = base.chains.filter((c) => !have?.chains.has(c)).map((c) => `-N ${c}`);
  for (const j of base.jumps) {
    // The base jumps differ by chain and target; the tag tells ours from anyone else's.
    const target = j.args[j.args.length - 1];
    const present = have?.rules.some((r) => r.chain === j.chain && r.tag === BASE_TAG && r.target === target);
    if (!present) lines.push(ruleLine(j.insert ? '-I' : '-A', j));
  }
  return lines;
}

/**
 * Repair: makes the installed state exactly `plan` (or nothing, without a
 * plan) for the object with `tag`, starting from what iptables-save printed;
 * with `withBase`, also adds whatever of strand's base is missing.
 */
export function repairScript(saved: Saved, tag: string, plan: ObjectPlan | undefined, ownedChains: Set<string>, withBase: boolean, family: Family): Script {
  const s: Script = new Map();
  const target = plan ? chainsOf(plan) : new Set<string>();
  for (const table of TABLES) {
    if (withBase) push(s, table, baseRepairLines(saved, family, table));
    const { lines, present } = purgeLines(saved.get(table), (c) => ownedChains.has(c), (t) => t === tag, target);
    push(s, table, lines);
    if (plan) push(s, table, addLines(plan, table, present));
  }
  return s;
}

/** Removes every strand chain and every rule tagged by or jumping into strand. */
export function removeAllScript(saved: Saved): Script {
  const s: Script = new Map();
  for (const [table, t] of saved) push(s, table, purgeLines(t, isStrandChain, isStrandTag).lines);
  return s;
}

/** The base, if anything of it is missing. */
export function ensureBaseScript(saved: Saved, family: Family): Script {
  const s: Script = new Map();
  for (const table of TABLES) push(s, table, baseRepairLines(saved, family, table));
  return s;
}
