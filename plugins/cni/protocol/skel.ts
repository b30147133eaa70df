// The plugin side of the protocol: read the environment and stdin, check
// them, call the verb's handler, print the result or the error JSON. Returns
// the exit code so the entry point does the process.exit.
import type { Readable, Writable } from 'node:stream';
import { decodeJson, parseNetConf, parseValidAttachments } from './config.js';
import { readEnv } from './env.js';
import { errorJson, toCniError } from './errors.js';
import { formatResult } from './result.js';
import { CniError, CNI_CODES, CNI_VERSIONS, type CniRequest, type PluginHandlers } from './types.js';
import { LATEST, isSupported } from './version.js';

export interface PluginIo {
  env: Record<string, string | undefined>;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export async function readAll(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => {
    if (!stream.write(text)) stream.once('drain', resolve);
    else resolve();
  });
}

// The version VERSION echoes and errors carry: the input's, when it is readable.
function versionOf(text: string | undefined): string {
  if (text === undefined) return LATEST;
  try {
    const v = (JSON.parse(text) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : LATEST;
  } catch {
    return LATEST;
  }
}

export async function runPlugin(
  handlers: PluginHandlers,
  io: PluginIo = { env: process.env, stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let stdin: string | undefined;
  try {
    const env = readEnv(io.env);
    // VERSION ignores its input unless the runtime pipes one (a terminal never ends).
    const interactive = (io.stdin as { isTTY?: boolean }).isTTY === true;
    if (env.command === 'VERSION') {
      if (!interactive) stdin = await readAll(io.stdin);
      const echoed = versionOf(stdin);
      await write(io.stdout, JSON.stringify({ cniVersion: isSupported(echoed) ? echoed : LATEST, supportedVersions: [...CNI_VERSIONS].reverse() }) + '\n');
      return 0;
    }
    const text = await readAll(io.stdin);
    stdin = text;
    const config = parseNetConf(text, env.command);
    const req: CniRequest = { ...env, config, env: io.env };
    if (env.command === 'GC') {
      const valid = parseValidAttachments(decodeJson(text));
      if (valid !== undefined) req.validAttachments = valid;
    }
    switch (env.command) {
      case 'ADD': {
        const result = await handlers.add(req);
        await write(io.stdout, JSON.stringify(formatResult(result, config.cniVersion)) + '\n');
        return 0;
      }
      case 'DEL':
        await handlers.del(req);
        return 0;
      case 'CHECK':
        if (!config.prevResult) throw new CniError(CNI_CODES.invalidConfig, 'Required prevResult missing: CHECK needs the ADD result');
        await handlers.check(req);
        return 0;
      case 'GC':
        await handlers.gc?.(req);
        return 0;
      case 'STATUS':
        await handlers.status?.(req);
        return 0;
    }
  } catch (err) {
    const cni = toCniError(err);
    if (!(err instanceof CniError) && !(err instanceof Error && err.name === 'StrandError')) {
      // An unexpected exception is a bug: keep its stack for whoever reads stderr.
      await write(io.stderr, `${(err as Error)?.stack ?? String(err)}\n`);
    }
    await write(io.stdout, JSON.stringify(errorJson(cni, versionOf(stdin))) + '\n');
    return 1;
  }
}
