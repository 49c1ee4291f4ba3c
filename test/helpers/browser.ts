import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

/** Debian's Chromium: tests never download a browser. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Flags measured on these machines (see TOOLING-FACTS): without
 * --allow-loopback-in-peer-connection the browser gathers no ICE candidates on 127.0.0.1.
 * The fake device is a microphone that beeps (or plays --use-file-for-fake-audio-capture).
 */
export const CHROMIUM_ARGS = [
  '--allow-loopback-in-peer-connection',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  '--autoplay-policy=no-user-gesture-required',
];

export interface PageProblem {
  /** 'console' for console.error, 'pageerror' for an uncaught exception or rejection. */
  kind: 'console' | 'pageerror';
  text: string;
  /** Where the message came from, when Chromium knows it. */
  location?: string;
}

export interface TestBrowser {
  readonly context: BrowserContext;
  /** The fresh profile directory (removed by close). */
  readonly profileDir: string;
  /** Opens a new tab on `url` (waits for 'load'); its console is recorded from the start. */
  page(url: string): Promise<Page>;
  /** console.error messages and page errors of one page, or of every page when omitted. */
  consoleErrors(page?: Page): PageProblem[];
  /** Every console line of one page (any level), for failure messages. */
  consoleLog(page: Page): string[];
  /** Closes the pages, the browser and removes its profile directory. Idempotent. */
  close(): Promise<void>;
}

export interface LaunchOptions {
  /** A WAV file that becomes the microphone (looped); default: Chromium's beeping fake device. */
  micWav?: string;
  /** More Chromium flags. */
  args?: string[];
  /** Chromium's stderr on the test's stderr (noisy: dbus/ALSA warnings are harmless). */
  verbose?: boolean;
}

const open = new Set<TestBrowser>();

/**
 * A fresh headless Chromium (its own profile directory) with a fake microphone. Each call
 * is a separate browser process, so two of them are two independent participants.
 */
export async function launchBrowser(opts: LaunchOptions = {}): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), 'media-chromium-'));
  const args = [...CHROMIUM_ARGS, ...(opts.micWav ? [`--use-file-for-fake-audio-capture=${opts.micWav}`] : []), ...(opts.args ?? [])];
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args,
      // Playwright mutes headless audio by default; a muted renderer may stop pulling remote
      // audio, and inbound audioLevel is what the tests read.
      ignoreDefaultArgs: ['--mute-audio'],
      timeout: 30_000,
      ...(opts.verbose ? { logger: { isEnabled: () => true, log: (name: string, _sev: string, message: string | Error) => console.error(`[chromium ${name}] ${String(message)}`) } } : {}),
    });
  } catch (error) {
    rmSync(profile, { recursive: true, force: true });
    throw error;
  }
  const problems = new Map<Page, PageProblem[]>();
  const logs = new Map<Page, string[]>();
  const watch = (page: Page): void => {
    if (problems.has(page)) return;
    const mine: PageProblem[] = [];
    const log: string[] = [];
    problems.set(page, mine);
    logs.set(page, log);
    page.on('console', (msg) => {
      const loc = msg.location();
      const location = loc.url ? `${loc.url}:${loc.lineNumber}` : undefined;
      log.push(`[${msg.type()}] ${msg.text()}`);
      if (msg.type() === 'error') mine.push({ kind: 'console', text: msg.text(), ...(location ? { location } : {}) });
    });
    page.on('pageerror', (error) => {
      log.push(`[pageerror] ${error.stack ?? error.message}`);
      mine.push({ kind: 'pageerror', text: error.stack ?? error.message });
    });
  };
  // A persistent context opens one blank tab; pages opened by scripts are watched too.
  for (const p of context.pages()) watch(p);
  context.on('page', watch);

  const used = new WeakSet<Page>();
  let closing: Promise<void> | undefined;
  const browser: TestBrowser = {
    context,
    profileDir: profile,
    async page(url) {
      // Reuse the initial blank tab once, so each browser has exactly the tabs the test opened.
      const blank = context.pages().find((p) => p.url() === 'about:blank' && !used.has(p));
      const page = blank ?? (await context.newPage());
      used.add(page);
      watch(page);
      await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
      return page;
    },
    consoleErrors(page) {
      if (page) return [...(problems.get(page) ?? [])];
      return [...problems.values()].flat();
    },
    consoleLog(page) {
      return [...(logs.get(page) ?? [])];
    },
    close() {
      closing ??= (async () => {
        open.delete(browser);
        try {
          await context.close();
        } catch {
          // Already gone (crashed or closed by playwright); the profile is removed regardless.
        } finally {
          rmSync(profile, { recursive: true, force: true });
        }
      })();
      return closing;
    },
  };
  open.add(browser);
  return browser;
}

/** Closes every browser this process launched and has not closed yet (for after() hooks). */
export async function closeAllBrowsers(): Promise<void> {
  await Promise.all([...open].map((b) => b.close()));
}

/** What the demo page reports from RTCPeerConnection.getStats() (see web-demo/src/stats.ts). */
export interface DemoStats {
  outbound: { packetsSent: number }[];
  inbound: { producerId: string; peerId: string; packetsReceived: number; audioLevel: number }[];
}

/** `window.demo.stats()` of a page running the web demo. */
export async function demoStats(page: Page): Promise<DemoStats> {
  return page.evaluate(async () => {
    const demo = (globalThis as unknown as { demo?: { stats(): Promise<DemoStats> } }).demo;
    if (!demo) throw new Error('window.demo is missing: is this the web demo page?');
    return demo.stats();
  });
}

/**
 * Audio RTP stats of every RTCPeerConnection the page created, for pages other than the
 * demo: works on any page whose peer connections are tracked (see `trackPeerConnections`).
 */
export interface RtcAudioStats {
  outbound: { ssrc: number; packetsSent: number; bytesSent: number }[];
  inbound: { ssrc: number; trackIdentifier: string; packetsReceived: number; packetsLost: number; audioLevel: number; totalAudioEnergy: number }[];
}

// The little of the DOM these page functions touch (the test tsconfig has no DOM lib).
interface PcLike {
  connectionState: string;
  getStats(): Promise<{ forEach(cb: (s: Record<string, unknown>) => void): void }>;
}
type PcCtor = new (...args: unknown[]) => PcLike;

/**
 * Makes the page keep a list of its RTCPeerConnections on `window.__peerConnections`; call
 * before `page.goto` (or on the context, for every page) so `rtcAudioStats` can read them.
 */
export async function trackPeerConnections(target: Page | BrowserContext): Promise<void> {
  await target.addInitScript(() => {
    const w = globalThis as unknown as { __peerConnections?: PcLike[]; RTCPeerConnection: PcCtor };
    if (w.__peerConnections) return;
    const list: PcLike[] = [];
    w.__peerConnections = list;
    const Native = w.RTCPeerConnection;
    w.RTCPeerConnection = class extends Native {
      constructor(...args: unknown[]) {
        super(...args);
        list.push(this);
      }
    };
  });
}

export async function rtcAudioStats(page: Page): Promise<RtcAudioStats> {
  return page.evaluate(async () => {
    const pcs = (globalThis as unknown as { __peerConnections?: PcLike[] }).__peerConnections;
    if (!pcs) throw new Error('peer connections are not tracked: call trackPeerConnections() before opening the page');
    const out: RtcAudioStats = { outbound: [], inbound: [] };
    for (const pc of pcs) {
      if (pc.connectionState === 'closed') continue;
      const report = await pc.getStats();
      report.forEach((s) => {
        if (s['kind'] !== 'audio') return;
        if (s['type'] === 'outbound-rtp') out.outbound.push({ ssrc: Number(s['ssrc']), packetsSent: Number(s['packetsSent'] ?? 0), bytesSent: Number(s['bytesSent'] ?? 0) });
        if (s['type'] === 'inbound-rtp') {
          out.inbound.push({
            ssrc: Number(s['ssrc']),
            trackIdentifier: String(s['trackIdentifier'] ?? ''),
            packetsReceived: Number(s['packetsReceived'] ?? 0),
            packetsLost: Number(s['packetsLost'] ?? 0),
            audioLevel: Number(s['audioLevel'] ?? 0),
            totalAudioEnergy: Number(s['totalAudioEnergy'] ?? 0),
          });
        }
      });
    }
    return out;
  });
}

/** Polls `fn` until `done(value)` or the deadline; the error names the last value seen. */
export async function pollUntil<T>(fn: () => Promise<T>, done: (v: T) => boolean, opts: { timeoutMs?: number; everyMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (done(last)) return last;
    if (Date.now() >= deadline) throw new Error(`timed out waiting for ${opts.what ?? 'a condition'}; last value: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 250));
  }
}
