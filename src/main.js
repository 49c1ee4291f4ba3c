// @ts-check
// The process entry is JavaScript, not TypeScript: Node strips the types of a .ts entry with
// amaro (swc built to WebAssembly), loaded before this file can turn the compile cache on, and
// it stays resident for the life of the process (measured: 15 MB of RSS). With the cache on
// first, every .ts module after this one comes from the cache already stripped, and amaro only
// loads for a module the cache has not seen yet.
import { existsSync, readFileSync } from 'node:fs';
import { enableCompileCache } from 'node:module';
import { dirname, join } from 'node:path';

/**
 * glibc's malloc keeps what calls freed: measured 30 MB above the start's RSS after 2400 calls
 * came and went, all of it returned by malloc_trim, which Node cannot call. jemalloc gives
 * freed pages back by itself, from a background thread, while calls go on. Where the system
 * has it (Debian: libjemalloc2) and LD_PRELOAD is not set (`LD_PRELOAD=` keeps glibc's malloc),
 * the entry starts itself again, in the same process, with jemalloc preloaded. Shards, forked
 * with this environment, have it from the start.
 */
const JEMALLOC = 'libjemalloc.so.2';
/** Freed pages go back within a second; two arenas (the threads have caches of their own). */
const MALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0,narenas:2';

/** jemalloc beside the C library this process runs on, where the distribution installs it. */
function jemalloc() {
  const libc = /\s(\/\S+\/libc\.so\.6)$/m.exec(readFileSync('/proc/self/maps', 'utf8'))?.[1];
  const path = libc ? join(dirname(libc), JEMALLOC) : '';
  return path && existsSync(path) ? path : null;
}

/**
 * V8 starts a process with a small old generation and, under a steady media load, kept it
 * small: at 200 AI calls on one shard it ran a full collection 0.5-1.4 times a second, each
 * pausing the loop 3-10 ms, and every pause delays one tick of every call (outbound interval
 * p99 27-29 ms). Starting it at 256 MB (a limit, not memory taken) left only the collections
 * external memory asks for: 0.1 a second, p99 24-25 ms, GC 5 ms a second instead of 8-16, for
 * 25-50 MB more RSS at that load.
 *
 * Most of those came from V8's allocation-site pretenuring. A site whose objects mostly
 * outlive a young collection gets its later objects allocated straight into the old
 * generation (its trace showed sites tenured during a bench run). Dead there, they keep the
 * frames and buffers they point to alive until a full collection: at 200 AI calls, a young
 * collection forced from outside left 16 MB of array buffers, and a full one took them down
 * to 9 MB; without pretenuring, 11.4 and 9.3. This service's objects per frame die within a
 * tick. Without pretenuring, at 200 AI calls (2 runs of each kind, with and without
 * recording): no full collection in the window against 0.1-0.2 a second, GC 2.8-3.7 ms a
 * second against 4.6-5.7, loop delay max 3.6-6.1 ms against 5-22, late clock slots 0-2
 * against 2-15, the same CPU, and 60 MB less RSS with recording.
 *
 * An operator's own setting of either on the command line is kept.
 */
const V8_FLAGS = [
  { flag: '--initial-old-space-size=256', names: ['--initial-old-space-size'] },
  { flag: '--no-allocation-site-pretenuring', names: ['--allocation-site-pretenuring', '--no-allocation-site-pretenuring'] },
];

/** The command line this process should run with, or null when it already does. */
function wantedStart() {
  const env = { ...process.env };
  const execArgv = [...process.execArgv];
  let changed = false;
  if (process.env.LD_PRELOAD === undefined) {
    const lib = jemalloc();
    if (lib) {
      Object.assign(env, { LD_PRELOAD: lib, MALLOC_CONF: process.env.MALLOC_CONF ?? MALLOC_CONF });
      changed = true;
    }
  }
  for (const { flag, names } of V8_FLAGS) {
    if (execArgv.some((a) => names.some((n) => a === n || a.startsWith(`${n}=`)))) continue;
    execArgv.unshift(flag);
    changed = true;
  }
  return changed ? { env, execArgv } : null;
}

// Shards are forked with this process's flags and environment: only the first process re-runs.
if (process.platform === 'linux' && !process.send && typeof process.execve === 'function') {
  const start = wantedStart();
  if (start) process.execve(process.execPath, [process.execPath, ...start.execArgv, ...process.argv.slice(1)], start.env);
}

// V8's compiled code, cached on disk, halves start-up (measured 815 -> 432 ms to load the
// service): the calls of a restarted shard wait for exactly that. The prompt decoder's thread
// and forked shards read the same cache through the environment; without it the decoder
// loaded amaro too (measured: 31 MB of RSS while it ran, 17 MB with the cache).
const cache = enableCompileCache();
if (cache.directory) process.env.NODE_COMPILE_CACHE ??= cache.directory;
const { runService } = await import('./run-service.ts');
runService();
