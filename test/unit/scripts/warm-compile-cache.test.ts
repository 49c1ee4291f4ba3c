import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

test('the image’s compile cache takes every module of the service, none of which does anything when imported', () => {
  const dir = mkdtempSync(join(tmpdir(), 'compile-cache-'));
  try {
    const out = execFileSync(process.execPath, [join(ROOT, 'scripts/warm-compile-cache.mjs')], {
      env: { PATH: process.env.PATH ?? '', NODE_COMPILE_CACHE: dir },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const modules = Number(/(\d+) modules/.exec(out)?.[1]);
    const sources = readdirSync(join(ROOT, 'src'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    // All but the decoder thread's module, which fills its own part when that thread runs.
    assert.equal(modules, sources.length - 1);
    const [versionDir] = readdirSync(dir);
    // Each module leaves its stripped source and its code; node_modules add their code.
    assert.ok(readdirSync(join(dir, versionDir!)).length >= 2 * modules, 'the cache holds less than the modules');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
