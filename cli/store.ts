// `strand store salvage`: copies what is intact of a damaged local store into
// a new one, for when opening it fails with "is damaged ... at byte offset".
import { StrandError } from '../common/errors.js';
import { parseStoreUrl } from '../store/url.js';
import { parse, str } from './args.js';

const USAGE = `usage: strand store salvage [--store local:///DIR] --out NEW_DIR
  copies every intact record of the local store in DIR into a new store in
  NEW_DIR (which must not exist or be empty) and says how many records were
  kept and which byte ranges were skipped. DIR is only read. Check the new
  store (strand --store local://NEW_DIR network ls), then stop what uses DIR
  and put NEW_DIR in its place. --store defaults to the global --store,
  then $STRAND_STORE, then local:///var/lib/strand.
`;

export async function storeCommand(argv: string[], globalStore?: string): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'salvage') throw new StrandError('invalid', `unknown store command "${sub ?? ''}"\n${USAGE}`);
  const p = parse(rest, { store: { type: 'string' }, out: { type: 'string' } }, USAGE);
  if (p.positionals.length > 0) throw new StrandError('invalid', `unexpected argument "${p.positionals[0]}"\n${USAGE}`);
  const url = str(p, 'store') ?? globalStore ?? (process.env.STRAND_STORE || undefined);
  const out = str(p, 'out');
  if (!out) throw new StrandError('invalid', `strand store salvage needs --out NEW_DIR\n${USAGE}`);
  const config = parseStoreUrl(url);
  if (config.kind !== 'local') throw new StrandError('invalid', `strand store salvage works on local stores (local:///DIR), not ${config.kind}`);
  const { salvageLocalStore } = await import('../store/local.js');
  const r = salvageLocalStore(config.dir, out);
  const lines = [
    `read ${r.source} (left as it was)`,
    `kept ${r.kept} record(s), skipped ${r.skipped.length} damaged range(s) and ${r.unusable.length} record(s) that did not fit`,
  ];
  for (const s of r.skipped) lines.push(`  skipped bytes ${s.offset}-${s.offset + s.length - 1} (${s.length} bytes): the record there ${s.reason}`);
  for (const u of r.unusable) lines.push(`  skipped the record at byte offset ${u.offset}: ${u.reason}`);
  if (r.snapshotLost) lines.push('the snapshot (the state before the first change kept) was lost: keys not written since it are missing');
  for (const [a, b] of r.missingRevisions) lines.push(`lost revision${a === b ? ` ${a}` : `s ${a}-${b}`}: keys written there may be missing or hold an older value`);
  lines.push(`wrote ${r.out}: revision ${r.revision}, ${r.keys} key(s)`);
  process.stdout.write(`${lines.join('\n')}\n`);
}
