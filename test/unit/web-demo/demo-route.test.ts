import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RouteHandler } from '../../../src/http/server.ts';
import { webDemoRoute } from '../../../src/web-demo/demo-route.ts';
import { captureLogging } from '../../helpers/capture-logging.ts';

/** The route in front of a fallback that answers 404, like HttpServer's built-in routes. */
async function serve(route: RouteHandler): Promise<{ server: Server; url: (p: string) => string }> {
  const server = createServer((req, res) => {
    void (async () => {
      if (await route(req, res)) return;
      res.writeHead(404, { 'content-type': 'text/plain' }).end('fallback\n');
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return { server, url: (p) => `http://127.0.0.1:${port}${p}` };
}

const close = (server: Server): Promise<void> => new Promise((resolve) => server.close(() => resolve()));

describe('web demo route', () => {
  describe('built from web-demo/', () => {
    let server: Server;
    let url: (p: string) => string;
    const { logger, lines } = captureLogging({ tenantId: 't' });
    before(async () => {
      ({ server, url } = await serve(await webDemoRoute({ logger, signalingPath: '/sig"<x>' })));
    });
    after(() => close(server));

    test('logs the build and serves the page with the signaling path, escaped', async () => {
      assert.ok(lines.some((l) => l['event'] === 'WEB_DEMO_BUILT'));
      const res = await fetch(url('/?room=x'));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const html = await res.text();
      assert.match(html, /<meta name="signaling-path" content="\/sig&#34;&#60;x&#62;">/);
    });

    test('serves the bundle, its source map and the stylesheet with their types', async () => {
      for (const [path, type] of [
        ['/demo/main.js', 'text/javascript; charset=utf-8'],
        ['/demo/main.js.map', 'application/json; charset=utf-8'],
        ['/demo/style.css', 'text/css; charset=utf-8'],
      ] as const) {
        const res = await fetch(url(path));
        assert.equal(res.status, 200, path);
        assert.equal(res.headers.get('content-type'), type, path);
        assert.ok((await res.arrayBuffer()).byteLength > 100, path);
      }
    });

    test('HEAD has no body, other methods are refused, unknown paths fall through', async () => {
      const head = await fetch(url('/demo/main.js'), { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.ok(Number(head.headers.get('content-length')) > 10_000);
      assert.equal((await fetch(url('/'), { method: 'POST' })).status, 405);
      const token = await fetch(url('/demo/token?room=a'));
      assert.equal(token.status, 404);
      assert.equal(await token.text(), 'fallback\n');
      assert.equal((await fetch(url('/metrics'))).status, 404);
    });
  });

  describe('when the build fails', () => {
    let server: Server;
    let url: (p: string) => string;
    let dir: string;
    const { logger, lines } = captureLogging({ tenantId: 't' });
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'web-demo-broken-'));
      mkdirSync(join(dir, 'src'));
      writeFileSync(join(dir, 'src/main.ts'), 'import { nothing } from "./missing.ts";\nconsole.log(nothing);\n');
      writeFileSync(join(dir, 'tsconfig.json'), '{}');
      writeFileSync(join(dir, 'index.html'), '<!doctype html>');
      writeFileSync(join(dir, 'style.css'), '');
      ({ server, url } = await serve(await webDemoRoute({ logger, signalingPath: '/signaling', dir })));
    });
    after(async () => {
      await close(server);
      rmSync(dir, { recursive: true, force: true });
    });

    test('logs the failure and answers 503 on the demo paths only', async () => {
      const failed = lines.find((l) => l['event'] === 'WEB_DEMO_BUILD_FAILED');
      assert.ok(failed, JSON.stringify(lines));
      assert.equal(failed['level'], 'error');
      const res = await fetch(url('/'));
      assert.equal(res.status, 503);
      assert.match(await res.text(), /could not be built/);
      assert.equal((await fetch(url('/demo/main.js'))).status, 503);
      assert.equal((await fetch(url('/demo/token'))).status, 404);
    });
  });
});
