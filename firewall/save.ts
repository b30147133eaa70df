// iptables-save output as data: per table, the chains and the rule lines.
// Only the slow paths (repair, inventory, removeAll) read it, since listing
// costs time proportional to everything installed.
import { CHAIN_PREFIX, TAG_PREFIX } from './names.js';

export interface SavedRule {
  chain: string;
  /** The line as printed ("-A CHAIN ..."); "-D" + the rest deletes exactly it. */
  line: string;
  /** The strand tag in its comment, if any. */
  tag?: string;
  /** The -j/-g target. */
  target?: string;
}

export interface SavedTable {
  chains: Set<string>;
  rules: SavedRule[];
}

export type Saved = Map<string, SavedTable>;

export function parseSave(text: string): Saved {
  const tables: Saved = new Map();
  let cur: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line.startsWith('*')) {
      cur = { chains: new Set(), rules: [] };
      tables.set(line.slice(1), cur);
    } else if (!cur || line === '' || line.startsWith('#')) {
      continue;
    } else if (line === 'COMMIT') {
      cur = undefined;
    } else if (line.startsWith(':')) {
      cur.chains.add(line.slice(1).split(' ')[0]!);
    } else if (line.startsWith('-A ')) {
      const chain = line.split(' ')[1]!;
      const tag = /--comment "?(strand:[^"\s]*)"?/.exec(line)?.[1];
      const target = /(?:^| )-[jg] (\S+)/.exec(line)?.[1];
      cur.rules.push({ chain, line, ...(tag ? { tag } : {}), ...(target ? { target } : {}) });
    }
  }
  return tables;
}

/** Whether a rule or chain belongs to strand (for removeAll and leak checks). */
export const isStrandChain = (chain: string): boolean => chain.startsWith(CHAIN_PREFIX);
export const isStrandTag = (tag: string | undefined): boolean => tag !== undefined && tag.startsWith(TAG_PREFIX);
