import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { closeAllBrowsers, launchBrowser, pollUntil, rtcAudioStats, trackPeerConnections, type TestBrowser } from '../helpers/browser.ts';

// A page on http://127.0.0.1 (a secure context, so getUserMedia exists) with two local peer
// connections: the fake microphone goes out of one and into the other over loopback ICE.
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>harness</title></head><body>
<audio id="out" autoplay></audio>
<script>
window.mic = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const tracks = stream.getAudioTracks();
  const t = tracks[0];
  const res = { count: tracks.length, label: t.label, readyState: t.readyState, enabled: t.enabled };
  for (const x of stream.getTracks()) x.stop();
  return res;
};
window.loopback = async () => {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const a = new RTCPeerConnection();
  const b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  b.ontrack = (e) => { document.getElementById('out').srcObject = new MediaStream([e.track]); };
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);
};
window.boom = () => { console.error('deliberate console error'); setTimeout(() => { throw new Error('deliberate page error'); }); };
</script></body></html>`;

describe('the browser test harness', () => {
  let server: Server;
  let url: string;
  let browser: TestBrowser;

  before(async () => {
    server = createServer((req, res) => {
      if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    browser = await launchBrowser();
  });
  after(async () => {
    await closeAllBrowsers();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('the fake device gives getUserMedia an audio track', async () => {
    const page = await browser.page(url);
    const mic = (await page.evaluate('window.mic()')) as { count: number; label: string; readyState: string; enabled: boolean };
    assert.equal(mic.count, 1);
    assert.equal(mic.readyState, 'live');
    assert.equal(mic.enabled, true);
    assert.match(mic.label, /fake/i);
    assert.deepEqual(browser.consoleErrors(page), []);
  });

  test('audio crosses a loopback peer connection with a non-zero level', async () => {
    await trackPeerConnections(browser.context);
    const page = await browser.page(url);
    await page.evaluate('window.loopback()');
    const stats = await pollUntil(
      () => rtcAudioStats(page),
      (s) => s.outbound.some((o) => o.packetsSent > 0) && s.inbound.some((i) => i.packetsReceived > 0 && i.audioLevel > 0),
      { timeoutMs: 15_000, what: 'loopback audio with a level' },
    );
    assert.ok(stats.inbound.length >= 1);
    assert.deepEqual(browser.consoleErrors(page), []);
  });

  test('console errors and page errors are collected per page', async () => {
    const page = await browser.page(url);
    await page.evaluate('window.boom()');
    await pollUntil(async () => browser.consoleErrors(page).length, (n) => n >= 2, { timeoutMs: 5_000, what: 'two problems' });
    const problems = browser.consoleErrors(page);
    assert.ok(problems.some((p) => p.kind === 'console' && p.text.includes('deliberate console error')));
    assert.ok(problems.some((p) => p.kind === 'pageerror' && p.text.includes('deliberate page error')));
  });

  test('a WAV file can be the microphone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'harness-wav-'));
    try {
      const wav = join(dir, 'tone.wav');
      writeFileSync(wav, toneWav(48_000, 440, 2));
      const b = await launchBrowser({ micWav: wav });
      await trackPeerConnections(b.context);
      const page = await b.page(url);
      await page.evaluate('window.loopback()');
      await pollUntil(() => rtcAudioStats(page), (s) => s.inbound.some((i) => i.audioLevel > 0.05), { timeoutMs: 15_000, what: 'the tone at the far side' });
      assert.deepEqual(b.consoleErrors(page), []);
      await b.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('close removes the profile and is idempotent', async () => {
    const b = await launchBrowser();
    const page = await b.page(url);
    assert.equal(await page.evaluate('1 + 1'), 2);
    assert.ok(existsSync(b.profileDir));
    await Promise.all([b.close(), b.close()]);
    await b.close();
    assert.equal(b.context.pages().length, 0);
    assert.equal(existsSync(b.profileDir), false);
  });
});

/** A mono 16-bit PCM WAV of a sine at half scale. */
function toneWav(rate: number, hz: number, seconds: number): Buffer {
  const n = rate * seconds;
  const buf = Buffer.alloc(44 + n * 2);
  buf.write('RIFF', 0, 'latin1');
  buf.writeUInt32LE(36 + n * 2, 4);
  buf.write('WAVEfmt ', 8, 'latin1');
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36, 'latin1');
  buf.writeUInt32LE(n * 2, 40);
  for (let i = 0; i < n; i++) buf.writeInt16LE(Math.round(16_000 * Math.sin((2 * Math.PI * hz * i) / rate)), 44 + i * 2);
  return buf;
}
