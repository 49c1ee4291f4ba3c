import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import type { RouteHandler } from '../http/server.ts';
import type { Logger } from '../logging/logger.ts';

/** The browser client's sources (web-demo/ at the repository root). */
export const WEB_DEMO_DIR = fileURLToPath(new URL('../../web-demo/', import.meta.url));

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

const asset = (body: Buffer | string, type: string): Asset => {
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  return { body: buf, type, etag: `"${createHash('sha1').update(buf).digest('base64url')}"` };
};

const escapeAttr = (s: string): string => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * Bundles the web demo (TypeScript, mediasoup-client, socket.io-client) into memory with
 * esbuild: `/` is the page, `/demo/main.js`, `/demo/main.js.map` and `/demo/style.css` its
 * parts. Once, at start-up (~0.3 s); the esbuild service process is stopped afterwards.
 */
export async function buildWebDemo(signalingPath: string, dir = WEB_DEMO_DIR): Promise<Map<string, Asset>> {
  const assets = new Map<string, Asset>();
  try {
    const result = await esbuild.build({
      absWorkingDir: dir,
      entryPoints: [join(dir, 'src/main.ts')],
      tsconfig: join(dir, 'tsconfig.json'),
      outdir: join(dir, 'dist'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['chrome111', 'firefox120', 'safari16'],
      minify: true,
      sourcemap: 'linked',
      legalComments: 'none',
      write: false,
      logLevel: 'silent',
    });
    for (const file of result.outputFiles) {
      const name = basename(file.path);
      const ext = name.endsWith('.js.map') ? '.map' : name.slice(name.lastIndexOf('.'));
      assets.set(`/demo/${name}`, asset(Buffer.from(file.contents), TYPES[ext] ?? 'application/octet-stream'));
    }
  } finally {
    await esbuild.stop();
  }
  if (!assets.has('/demo/main.js')) throw new Error('esbuild produced no main.js');
  assets.set('/demo/style.css', asset(await readFile(join(dir, 'style.css')), TYPES['.css']!));
  const html = (await readFile(join(dir, 'index.html'), 'utf8')).replace(
    '</head>',
    `  <meta name="signaling-path" content="${escapeAttr(signalingPath)}">\n</head>`,
  );
  const page = asset(html, TYPES['.html']!);
  assets.set('/', page);
  assets.set('/index.html', page);
  return assets;
}

/**
 * The web demo on the HTTP port. A build failure is logged and the service still starts:
 * the demo's paths then answer 503 saying so. Other paths (`/demo/token` included) fall
 * through to the next handler.
 */
export async function webDemoRoute(opts: { logger: Logger; signalingPath: string; dir?: string }): Promise<RouteHandler> {
  const log = opts.logger.child({ component: 'web-demo' });
  const started = performance.now();
  let assets: Map<string, Asset> | undefined;
  try {
    assets = await buildWebDemo(opts.signalingPath, opts.dir);
    const bytes = assets.get('/demo/main.js')!.body.length;
    log.info(
      { event: 'WEB_DEMO_BUILT', attributes: { 'web_demo.bundle_bytes': bytes, 'web_demo.build_ms': Math.round(performance.now() - started) } },
      'web demo built: open / on the HTTP port',
    );
  } catch (error) {
    log.error({ event: 'WEB_DEMO_BUILD_FAILED', error }, 'the web demo failed to build; the service runs without it');
  }
  const known = new Set(['/', '/index.html', '/demo/main.js', '/demo/main.js.map', '/demo/style.css']);

  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!known.has(path) && !assets?.has(path)) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return true;
    }
    const found = assets?.get(path);
    if (!found) {
      res
        .writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
        .end('The web demo could not be built when the service started; the service log says why (event WEB_DEMO_BUILD_FAILED).\n');
      return true;
    }
    const headers = { 'content-type': found.type, 'cache-control': 'no-cache', etag: found.etag, 'x-content-type-options': 'nosniff' };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': found.body.length });
    res.end(req.method === 'HEAD' ? undefined : found.body);
    return true;
  };
}
