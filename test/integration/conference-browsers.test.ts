import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { encodeWav } from '../../src/codecs/wav.ts';
import { decodeG711 } from '../../src/codecs/g711.ts';
import { tone, toneDbfs } from '../helpers/audio.ts';
import { demoStats, launchBrowser, pollUntil, type DemoStats, type TestBrowser } from '../helpers/browser.ts';
import { TestClient } from '../helpers/grpc-client.ts';
import { RtpPeer } from '../helpers/rtp-peer.ts';
import { ffmpegSendRtp, freeUdpPort, type FfmpegRun } from '../helpers/ffmpeg.ts';
import { startService, type RunningService } from '../helpers/service.ts';

/** Five phones and two browsers, each with its own tone. */
const PHONE_HZ = [400, 650, 950, 1300, 1700];
const BROWSER_HZ = [2200, 2700];

interface Demo {
  join(): Promise<void>;
  peers: { peerId: string; kind: string; displayName: string }[];
  state: string;
  moderator: boolean;
  conference: { conferenceId: string; participants: { participantId: string; kind: string; displayName: string; callId: string; muted: boolean; talking: boolean }[] } | null;
  status: string[];
  control(id: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }): Promise<boolean>;
  startTestLeg(opts?: { loop?: boolean }): Promise<string | undefined>;
}

/** The level of each frequency in what the phone received over the last `seconds` (by arrival). */
function heard(phone: RtpPeer, seconds: number, freqs: readonly number[]): number[] {
  const since = performance.now() - seconds * 1000;
  const frames = phone.received.filter((p) => p.at >= since && p.payloadType === 0).map((p) => decodeG711('PCMU', p.payload));
  const last = new Int16Array(frames.length * 160);
  frames.forEach((f, k) => last.set(f, k * 160));
  // The median of 100 ms windows: a tone that is there most of the time reads its level.
  return freqs.map((f) => {
    const w: number[] = [];
    for (let off = 0; off + 800 <= last.length; off += 800) w.push(toneDbfs(last.subarray(off, off + 800), 8000, f));
    w.sort((a, b) => a - b);
    return w[Math.floor(w.length / 2)] ?? -200;
  });
}

describe('conference: phones and browsers in one room', () => {
  let svc: RunningService;
  let client: TestClient;
  const browsers: TestBrowser[] = [];
  /** What each phone hears (its ear); ffmpeg speaks for it. */
  const phones: RtpPeer[] = [];
  const senders: FfmpegRun[] = [];
  let dir = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conf-mic-'));
    svc = await startService({ env: { RTP_SERVICE_PORT_MIN: '38700', RTP_SERVICE_PORT_MAX: '38799', SIGNALING_DEMO_ENABLED: 'true' } });
    client = new TestClient(svc.grpcPort);
    for (const hz of BROWSER_HZ) {
      const wav = join(dir, `mic-${hz}.wav`);
      writeFileSync(wav, encodeWav(tone(hz, 4000, 16000, 6000), 16000, 1));
      browsers.push(await launchBrowser({ micWav: wav }));
    }
  });
  after(async () => {
    for (const f of senders) f.proc.kill('SIGKILL');
    for (const p of phones) p.close();
    for (const b of browsers) await b.close();
    client?.close();
    await svc?.stop('SIGKILL');
  });

  test('phones hear the browsers through the mix, browsers hear each phone as its own track and each other through the SFU; mute and kick reach browsers', async (t) => {
    const conf = `mixed-${process.pid}`;
    assert.equal((await client.media_('CreateConference', { conference_id: conf })).error, undefined);
    const ports: number[] = [];
    for (let i = 0; i < PHONE_HZ.length; i++) {
      const callId = `${conf}-phone-${i}`;
      const a = await client.media_<{ rtp_port: number }>('AllocatePort', { call_id: callId, codec: 'PCMU' });
      assert.equal(a.error, undefined, a.error?.details);
      const port = a.response!.rtp_port;
      const phone = await RtpPeer.open();
      phones.push(phone);
      await client.media_('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: phone.address });
      assert.equal((await client.media_('AddToConference', { conference_id: conf, server_rtp_port: port })).error, undefined);
      ports.push(port);
      // ffmpeg as the phone, talking for longer than the test runs (it is stopped at the end).
      const wav = join(dir, `phone-${PHONE_HZ[i]}.wav`);
      writeFileSync(wav, encodeWav(tone(PHONE_HZ[i]!, 90_000, 8000, 6000), 8000, 1));
      senders.push(ffmpegSendRtp({ wav, port, codec: 'PCMU', localPort: await freeUdpPort(), ssrc: 0x2000 + i }));
    }

    // The demo never hands out a token for a conference's room: the platform's token is given to the page.
    const demoGrant = await fetch(svc.url(`/demo/token?room=${encodeURIComponent(conf)}`));
    assert.equal(demoGrant.status >= 400, true, `the demo granted a conference room: ${demoGrant.status}`);
    const pages: Awaited<ReturnType<TestBrowser["page"]>>[] = [];
    for (const [i, b] of browsers.entries()) {
      // Browser 0 moderates; browser 1 takes part only.
      const granted = await client.media_<{ token: string; signaling_path: string }>('CreateRoomToken', { room_id: conf, participant: `browser-${i}`, moderator: i === 0 });
      assert.equal(granted.error, undefined, granted.error?.details);
      const page = await b.page(svc.url(`/?room=${encodeURIComponent(conf)}&name=browser-${i}&processing=0`));
      await page.route('**/demo/token?*', (route) => route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify({ token: granted.response!.token, path: granted.response!.signaling_path }) }));
      await page.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.join());
      pages.push(page);
    }
    const participants = await pollUntil(
      async () => (await client.media_<{ participants: { participant_id: string; kind: string; display_name: string }[] }>('GetConference', { conference_id: conf })).response?.participants ?? [],
      (ps) => ps.filter((p) => p.kind === 'browser').length === 2,
      { what: 'both browsers in the conference', timeoutMs: 20_000 },
    );
    const browserIds = ['browser-0', 'browser-1'].map((name) => participants.find((p) => p.display_name === name)!.participant_id);

    // Phones hear both browsers and the other phones, never themselves.
    const all = [...PHONE_HZ, ...BROWSER_HZ];
    const phoneLevels = await pollUntil(
      async () => phones.map((p) => heard(p, 1, all)),
      (ls) => ls.every((l) => l.slice(PHONE_HZ.length).every((d) => d > -30)),
      { what: `both browsers heard by every phone (dBFS of ${all.join('/')} Hz)`, timeoutMs: 30_000 },
    );
    for (const [i, l] of phoneLevels.entries()) {
      t.diagnostic(`phone ${i} (${PHONE_HZ[i]} Hz) hears ${l.map((d) => d.toFixed(0)).join('/')} dBFS of ${all.join('/')} Hz`);
      assert.ok(l[i]! < -40, `phone ${i} hears itself at ${l[i]!.toFixed(1)} dBFS`);
      for (let j = 0; j < PHONE_HZ.length; j++) if (j !== i) assert.ok(l[j]! > -30, `phone ${i} does not hear phone ${j} (${l[j]!.toFixed(1)} dBFS)`);
    }

    // Each browser gets each phone as its own track, the other browser through the SFU, and
    // no track of its own voice; the conference's voice track is there too.
    for (const [i, page] of pages.entries()) {
      const peers = await page.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.peers);
      const phonePeers = peers.filter((p) => p.kind === 'phone').map((p) => p.peerId);
      assert.equal(phonePeers.length, PHONE_HZ.length, `browser ${i} lists ${JSON.stringify(peers)}`);
      assert.ok(peers.some((p) => p.kind === 'conference'), `browser ${i} does not list the conference's voice`);
      const stats = await pollUntil(
        () => demoStats(page),
        (s: DemoStats) => phonePeers.every((id) => (s.inbound.find((x) => x.peerId === id)?.audioLevel ?? 0) > 0.01) && s.inbound.some((x) => x.peerId === browserIds[1 - i] && x.audioLevel > 0.01),
        { what: `browser ${i} hearing every phone and the other browser`, timeoutMs: 30_000 },
      );
      assert.equal(stats.inbound.some((x) => x.peerId === browserIds[i]), false, `browser ${i} receives its own voice`);
      t.diagnostic(`browser ${i}: ${JSON.stringify(stats.inbound.map((x) => ({ peer: x.peerId.slice(0, 14), packets: x.packetsReceived, level: +x.audioLevel.toFixed(3) })))}`);
    }

    // Mute browser 0 from the platform: the phones stop hearing it and browser 1 gets no more of it.
    const muted = await client.media_('UpdateConferenceParticipant', { conference_id: conf, participant_id: browserIds[0], mute: 'TOGGLE_ON' });
    assert.equal(muted.error, undefined, muted.error?.details);
    await sleep(1200);
    for (const [i, p] of phones.entries()) {
      const l = heard(p, 1, BROWSER_HZ);
      assert.ok(l[0]! < -40, `phone ${i} still hears muted browser 0 at ${l[0]!.toFixed(1)} dBFS`);
      assert.ok(l[1]! > -30, `phone ${i} stopped hearing browser 1 (${l[1]!.toFixed(1)} dBFS)`);
    }
    const before = (await demoStats(pages[1]!)).inbound.find((x) => x.peerId === browserIds[0])?.packetsReceived ?? 0;
    await sleep(1000);
    const afterMute = (await demoStats(pages[1]!)).inbound.find((x) => x.peerId === browserIds[0])?.packetsReceived ?? 0;
    assert.ok(afterMute - before < 10, `browser 1 received ${afterMute - before} packets from muted browser 0 in 1 s`);

    // The page shows the conference: every participant by kind, the phones talking; only the moderator's token may control.
    const view = await pollUntil(
      () => pages[0]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.conference),
      (v) => (v?.participants.filter((p) => p.kind === 'phone' && p.talking).length ?? 0) === PHONE_HZ.length,
      { what: "the page's conference view with every phone talking" },
    );
    assert.deepEqual(view!.participants.map((p) => p.kind).sort(), ['browser', 'browser', ...PHONE_HZ.map(() => 'phone')]);
    assert.equal(await pages[0]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.moderator), true);
    assert.equal(await pages[1]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.moderator), false);
    const phone1 = view!.participants.find((p) => p.callId === `${conf}-phone-1`)!.participantId;
    assert.equal(await pages[1]!.evaluate((id) => (globalThis as unknown as { demo: Demo }).demo.control(id, { mute: true }), phone1), false);
    const refused = await pages[1]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.status);
    assert.ok(refused.some((l) => l.includes('permission_denied')), `the page without a moderator token was not refused: ${refused.slice(-3).join(' | ')}`);
    assert.equal(await pages[0]!.evaluate((id) => (globalThis as unknown as { demo: Demo }).demo.control(id, { mute: true }), phone1), true);
    await pollUntil(
      () => pages[1]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.conference),
      (v) => v?.participants.find((p) => p.participantId === phone1)?.muted === true,
      { what: 'phone 1 shown muted on the other page' },
    );
    await sleep(1000);
    assert.ok(heard(phones[0]!, 0.8, [PHONE_HZ[1]!])[0]! < -40, 'phone 0 still hears phone 1, muted from the page');

    // A test prompt from a page stands in for a phone: it joins the conference and talks.
    assert.ok(await pages[1]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.startTestLeg({ loop: true })));
    await pollUntil(
      () => pages[0]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.conference),
      (v) => v?.participants.some((p) => p.kind === 'test-leg' && p.talking) === true,
      { what: 'the test prompt in the conference, talking', timeoutMs: 20_000 },
    );

    // Unmuted from the page again, phone 1 is heard by phone 0 (what the kick below is checked against).
    assert.equal(await pages[0]!.evaluate((id) => (globalThis as unknown as { demo: Demo }).demo.control(id, { mute: false }), phone1), true);

    // Kick browser 1: it is disconnected and leaves the conference; the phones stop hearing it.
    assert.equal((await client.media_('RemoveFromConference', { conference_id: conf, participant_id: browserIds[1], kick: true })).error, undefined);
    await pollUntil(() => pages[1]!.evaluate(() => (globalThis as unknown as { demo: Demo }).demo.state), (s) => s !== 'joined', { what: 'the kicked page leaving' });
    await sleep(1000);
    const l = heard(phones[0]!, 0.8, [PHONE_HZ[1]!, BROWSER_HZ[1]!]);
    assert.ok(l[0]! > -25, `phone 0 does not hear phone 1 after its unmute (${l[0]!.toFixed(1)} dBFS)`);
    assert.ok(l[1]! < -40, `phone 0 still hears the kicked browser at ${l[1]!.toFixed(1)} dBFS`);
    const left = await client.media_<{ participants: { kind: string }[] }>('GetConference', { conference_id: conf });
    assert.equal(left.response?.participants.filter((p) => p.kind === 'browser').length, 1);
    assert.equal(left.response?.participants.filter((p) => p.kind === 'test-leg').length, 0, "the kicked browser's test prompt stayed");
    assert.deepEqual(browsers[0]!.consoleErrors(pages[0]!), []);
    for (const f of senders) f.proc.kill('SIGKILL');
    for (const port of ports) await client.media_('ReleasePort', { rtp_port: port });
    await client.media_('EndConference', { conference_id: conf });
  });
});
