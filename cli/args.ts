// Command-line parsing shared by the strand commands: node's parseArgs with
// Docker-style repeated flags, and errors that say which flag is wrong.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { StrandError } from '../common/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed {
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  positionals: string[];
}

export function parse(args: string[], options: Options, usage: string): Parsed {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      process.stdout.write(usage);
      process.exit(0);
    }
    return { values, positionals };
  } catch (err) {
    if (err instanceof StrandError) throw err;
    throw new StrandError('invalid', `${(err as Error).message.replace(/\. To specify.*$/s, '')}\n${usage}`);
  }
}

export const str = (p: Parsed, key: string): string | undefined => p.values[key] as string | undefined;
export const list = (p: Parsed, key: string): string[] => (p.values[key] as string[] | undefined) ?? [];
export const flag = (p: Parsed, key: string): boolean => p.values[key] === true;

/**
 * "k=v" pairs (Docker's --opt, --label, --aux-address) into a record. The record
 * has no prototype, so a key such as __proto__ or constructor is kept as data
 * (Docker keeps any label key) rather than dropped or read from Object.prototype;
 * JSON.stringify writes it like any other key.
 */
export function keyValues(items: string[], what: string): Record<string, string> {
  const out = Object.create(null) as Record<string, string>;
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new StrandError('invalid', `invalid ${what} "${item}": expected KEY=VALUE`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/**
 * --opt pairs: as keyValues, but a key naming a member of Object.prototype
 * (__proto__, constructor, toString...) is no driver's option and is refused here,
 * whatever the driver.
 */
export function optionValues(items: string[]): Record<string, string> {
  const out = keyValues(items, 'option');
  for (const key of Object.keys(out)) {
    if (key in Object.prototype) throw new StrandError('invalid', `unknown option "${key}" in --opt ${key}=${out[key]}: no driver has an option of that name; remove it`);
  }
  return out;
}

/** Prints rows as an aligned table with a header. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
