import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { speechFixtures } from '../helpers/audio.ts';
import { closeAllBrowsers, demoStats, launchBrowser, pollUntil, type DemoStats, type TestBrowser } from '../helpers/browser.ts';
import { freePortRun } from '../helpers/ports.ts';
import { startService, type RunningService } from '../helpers/service.ts';

interface DemoPeer {
  peerId: string;
  displayName: string;
  kind: 'browser' | 'phone' | 'test-leg';
  self: boolean;
}

/** What a test reads of `window.demo` besides stats. */
interface DemoView {
  state: string;
  peerId: string;
  roomId: string;
  peers: DemoPeer[];
  levels: Record<string, number>;
  status: string[];
  testLegPeerId: string | undefined;
}

const view = (page: Page): Promise<DemoView> =>
  page.evaluate(() => {
    const d = (globalThis as unknown as { demo: DemoView }).demo;
    return { state: d.state, peerId: d.peerId, roomId: d.roomId, peers: d.peers, levels: d.levels, status: d.status, testLegPeerId: d.testLegPeerId };
  });

/** Inbound audio from `peerId`: polled until packets and a non-zero level were both seen. */
async function hears(page: Page, peerId: string, timeoutMs = 30_000): Promise<DemoStats['inbound'][number]> {
  const stats = await pollUntil(
    () => demoStats(page),
    (s) => s.inbound.some((i) => i.peerId === peerId && i.packetsReceived > 0 && i.audioLevel > 0),
    { timeoutMs, everyMs: 100, what: `audio with a level from ${peerId}` },
  );
  return stats.inbound.find((i) => i.peerId === peerId)!;
}

describe('the web demo', () => {
  let svc: RunningService;
  const browsers: TestBrowser[] = [];

  // Speech, not Chromium's default beep: the browser's noise suppression learns a beep
  // every 500 ms as noise and can take it below the server's level threshold.
  const open = async (room: string, name: string): Promise<{ browser: TestBrowser; page: Page }> => {
    const browser = await launchBrowser({ micWav: speechFixtures().wav16k });
    browsers.push(browser);
    const page = await browser.page(svc.url(`/?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`));
    return { browser, page };
  };

  /** Joins with the page's own form values (from the URL) and checks the page is in. */
  const join = async (page: Page): Promise<DemoView> => {
    try {
      await page.evaluate(() => (globalThis as unknown as { demo: { join(): Promise<void> } }).demo.join());
    } catch (error) {
      throw new Error(`join failed: ${String(error)}; page status: ${JSON.stringify((await view(page)).status)}`);
    }
    const v = await view(page);
    assert.equal(v.state, 'joined', JSON.stringify(v.status));
    return v;
  };

  const noConsoleErrors = (b: TestBrowser, page: Page): void => {
    assert.deepEqual(b.consoleErrors(page), [], `console of the page:\n${b.consoleLog(page).join('\n')}`);
  };

  before(async () => {
    svc = await startService({
      env: {
        LOG_LEVEL: 'info',
        SIGNALING_DEMO_ENABLED: 'true',
        WEBRTC_LISTEN_IP: '127.0.0.1',
        WEBRTC_PORT: String(await freePortRun(1)),
        RTP_SERVICE_PORT_MIN: '38000',
        RTP_SERVICE_PORT_MAX: '38199',
        MEDIASOUP_RTC_MIN_PORT: '38200',
        MEDIASOUP_RTC_MAX_PORT: '38399',
      },
    });
  });
  after(async () => {
    await closeAllBrowsers();
    await svc?.stop('SIGKILL');
  });

  test('the service serves the page, its bundle and stylesheet, and still answers /demo/token', async () => {
    await svc.waitForLog((l) => l.event === 'WEB_DEMO_BUILT');
    const page = await fetch(svc.url('/'));
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(page.headers.get('cache-control'), 'no-cache');
    assert.match(await page.text(), /<script type="module" src="\/demo\/main\.js">/);
    const js = await fetch(svc.url('/demo/main.js'));
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.ok((await js.arrayBuffer()).byteLength > 10_000);
    const again = await fetch(svc.url('/demo/main.js'), { headers: { 'if-none-match': js.headers.get('etag') ?? '' } });
    assert.equal(again.status, 304);
    const css = await fetch(svc.url('/demo/style.css'));
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);
    await css.arrayBuffer();
    const token = await fetch(svc.url('/demo/token?room=probe&name=x'));
    assert.equal(token.status, 200);
    const body = (await token.json()) as { token: string; path: string };
    assert.equal(typeof body.token, 'string');
    assert.equal(body.path, '/signaling');
    assert.equal((await fetch(svc.url('/demo/nothing-here'))).status, 404);
  });

  test('the page loads and joins a room without console errors', async () => {
    const { browser, page } = await open('web-a', 'alice');
    const v = await join(page);
    assert.equal(v.roomId, 'web-a');
    assert.ok(v.peers.some((p) => p.self && p.peerId === v.peerId && p.kind === 'browser'), JSON.stringify(v.peers));
    // The microphone is produced: the browser sends.
    await pollUntil(() => demoStats(page), (s) => s.outbound.some((o) => o.packetsSent > 0), { what: 'outbound packets' });
    assert.equal(await page.locator('#peers li').count(), 1);
    await page.evaluate(() => (globalThis as unknown as { demo: { leave(): Promise<void> } }).demo.leave());
    assert.equal((await view(page)).state, 'closed');
    noConsoleErrors(browser, page);
  });

  test('two browsers in one room hear each other', async () => {
    const a = await open('web-b', 'alice');
    const b = await open('web-b', 'bob');
    const va = await join(a.page);
    const vb = await join(b.page);
    const [fromBob, fromAlice] = await Promise.all([hears(a.page, vb.peerId), hears(b.page, va.peerId)]);
    assert.ok(fromBob.packetsReceived > 0 && fromBob.audioLevel > 0);
    assert.ok(fromAlice.packetsReceived > 0 && fromAlice.audioLevel > 0);
    // Each sees the other in the participant list, with a level from the server's audioLevels.
    const seen = await pollUntil(
      () => view(a.page),
      (v) => v.peers.some((p) => p.peerId === vb.peerId && p.displayName === 'bob') && (v.levels[vb.peerId] ?? -127) > -127,
      { timeoutMs: 15_000, everyMs: 100, what: "bob in alice's list with a level" },
    );
    assert.equal(seen.peers.length, 2);
    assert.equal(await a.page.locator('#peers li').count(), 2);
    // Bob leaves: alice's page drops him and his audio.
    await b.page.evaluate(() => (globalThis as unknown as { demo: { leave(): Promise<void> } }).demo.leave());
    await pollUntil(() => view(a.page), (v) => !v.peers.some((p) => p.peerId === vb.peerId), { timeoutMs: 10_000, what: 'bob gone from alice' });
    await pollUntil(() => demoStats(a.page), (s) => s.inbound.length === 0, { timeoutMs: 10_000, what: "alice's consumer of bob closed" });
    noConsoleErrors(a.browser, a.page);
    noConsoleErrors(b.browser, b.page);
  });

  test("the test leg's prompt arrives in the browser", async () => {
    const { browser, page } = await open('web-c', 'carol');
    await join(page);
    const legPeerId = await page.evaluate(() =>
      (globalThis as unknown as { demo: { startTestLeg(o: { loop: boolean }): Promise<string | undefined> } }).demo.startTestLeg({ loop: true }),
    );
    assert.ok(legPeerId, `startTestLeg refused; page status: ${JSON.stringify((await view(page)).status)}`);
    const leg = await pollUntil(() => view(page), (v) => v.peers.some((p) => p.peerId === legPeerId && p.kind === 'test-leg'), { timeoutMs: 10_000, what: 'the test leg in the list' });
    assert.equal(leg.testLegPeerId, legPeerId);
    const inbound = await hears(page, legPeerId);
    assert.ok(inbound.packetsReceived > 0 && inbound.audioLevel > 0);
    await page.evaluate(() => (globalThis as unknown as { demo: { stopTestLeg(): Promise<void> } }).demo.stopTestLeg());
    await pollUntil(() => view(page), (v) => !v.peers.some((p) => p.peerId === legPeerId), { timeoutMs: 10_000, what: 'the test leg gone' });
    noConsoleErrors(browser, page);
  });

  test('closed browsers leave no room behind', async () => {
    await closeAllBrowsers();
    await pollUntil(
      async () => ((await (await fetch(svc.url('/debug/resources'))).json()) as { rooms?: number }).rooms,
      (n) => n === 0 || n === undefined,
      { timeoutMs: 15_000, what: 'no rooms' },
    );
  });
});
