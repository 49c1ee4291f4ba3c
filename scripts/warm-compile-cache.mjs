// Fills Node's compile cache (NODE_COMPILE_CACHE) with every module of the service, its types
// already stripped: a process that starts on it never loads Node's TypeScript stripper (15 MB
// of RSS for the life of the process) and compiles nothing it has already compiled. The image
// runs this at build time as the service's user (the cache is kept per user), so a new
// container starts on a warm cache.
//
//   NODE_COMPILE_CACHE=dir node scripts/warm-compile-cache.mjs
import { readdirSync } from 'node:fs';
import { flushCompileCache, getCompileCacheDir } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

if (!getCompileCacheDir()) {
  process.stderr.write('set NODE_COMPILE_CACHE to the cache directory\n');
  process.exit(2);
}
const src = fileURLToPath(new URL('../src/', import.meta.url));
// The decoder thread's module listens to its parent when imported; that thread fills its own
// part of the cache when it first runs. No other module does anything when imported.
const THREAD = join('playback', 'decode-worker.ts');
const modules = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && f !== THREAD);
for (const f of modules) await import(pathToFileURL(join(src, f)).href);
flushCompileCache();
process.stdout.write(`compile cache: ${modules.length} modules in ${getCompileCacheDir()}\n`);
