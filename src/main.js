// @ts-check
// The process entry is JavaScript, not TypeScript: Node strips the types of a .ts entry with
// amaro (swc built to WebAssembly), loaded before this file can turn the compile cache on, and
// it stays resident for the life of the process (measured: 15 MB of RSS). With the cache on
// first, every .ts module after this one comes from the cache already stripped, and amaro only
// loads for a module the cache has not seen yet.
import { enableCompileCache } from 'node:module';

// V8's compiled code, cached on disk, halves start-up (measured 815 -> 432 ms to load the
// service): the calls of a restarted shard wait for exactly that.
enableCompileCache();
await import('./run-service.ts');
