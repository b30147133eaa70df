// Loaded with `node --import` by the lazy-loading test: reports on stderr
// every package the process imports, so the test can see what a local-store
// user pulls in.
import { register } from 'node:module';

const hook = `
export async function resolve(specifier, context, next) {
  if (!specifier.startsWith('.') && !specifier.startsWith('node:') && !specifier.startsWith('file:')) {
    process.stderr.write('import ' + specifier + '\\n');
  }
  return next(specifier, context);
}`;
register(`data:text/javascript,${encodeURIComponent(hook)}`);
