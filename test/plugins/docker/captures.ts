// The request bodies dockerd 20.10 really sent to a logging plugin
// (test/fixtures/docker/rs-net.jsonl), as fixtures: the first captured body of
// each method, or all of them.
import { readFileSync } from 'node:fs';
import { fixture } from '../../support/paths.js';

const FILE = process.env.STRAND_DOCKER_CAPTURES ?? fixture('docker', 'rs-net.jsonl');

export interface Captured {
  path: string;
  body: Record<string, unknown> | null;
  headers: Record<string, string>;
}

let cache: Captured[] | undefined;

export function captures(): Captured[] {
  cache ??= readFileSync(FILE, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const r = JSON.parse(l) as { path: string; body: Record<string, unknown> | null; headers: Record<string, string> };
      return { path: r.path, body: r.body, headers: r.headers };
    });
  return cache;
}

/** Every captured body sent to /<method>, in order. */
export function bodies(method: string): Record<string, unknown>[] {
  return captures()
    .filter((c) => c.path === `/${method}` && c.body)
    .map((c) => structuredClone(c.body!));
}

/** The first captured body of /<method> that satisfies `where`. */
export function body(method: string, where: (b: Record<string, unknown>) => boolean = () => true): Record<string, unknown> {
  const b = bodies(method).find(where);
  if (!b) throw new Error(`no capture of ${method} matches`);
  return b;
}
