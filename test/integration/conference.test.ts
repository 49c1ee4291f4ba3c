import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import type { Duplex, Readable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { decodeG711, encodeG711 } from '../../src/codecs/g711.ts';
import { buildRtp, isRtcpPacket } from '../../src/rtp-bridge/rtp-packet.ts';
import { encodeWav } from '../../src/codecs/wav.ts';
import { concatPcm as concat, tone, toneDbfs } from '../helpers/audio.ts';
import { captureUdp, rtpCadence } from '../helpers/capture.ts';
import { ffmpegDecodeChannels, ffmpegSendRtp, freeUdpPort, type G711 } from '../helpers/ffmpeg.ts';
import { eventually, TestClient } from '../helpers/grpc-client.ts';
import { RtpPeer, type ReceivedPacket } from '../helpers/rtp-peer.ts';
import { startService, type RunningService } from '../helpers/service.ts';

/** Each phone's own tone: far enough apart that a 20 ms Hann window tells them apart. */
const FREQS = [400, 650, 950, 1300, 1700];
const PROMPT_HZ = 2200;
/** The service's join and leave tones in this suite (CONFERENCE_JOIN_TONE_URI, CONFERENCE_LEAVE_TONE_URI). */
const JOIN_HZ = 2600;
const LEAVE_HZ = 3200;
const toneUri = (hz: number): string => `data:audio/wav;base64,${encodeWav(tone(hz, 200, 8000, AMP), 8000, 1).toString('base64')}`;
const AMP = 6000;
/** A tone of amplitude 6000 reads about -14.7 dBFS; an absent one far below -40. */
const PRESENT = -25;
const ABSENT = -40;

type Stream = Readable & { cancel(): void };

interface Phone {
  port: number;
  codec: G711;
  ear: RtpPeer;
  callId: string;
}

interface PlatformEventLine {
  type: string;
  payload: Record<string, unknown>;
}

const decode = (p: ReceivedPacket): Int16Array | null => (p.payloadType === 0 ? decodeG711('PCMU', p.payload) : p.payloadType === 8 ? decodeG711('PCMA', p.payload) : null);

/** Per received packet: arrival (performance.now) and each frequency's level. */
function levels(ear: RtpPeer, freqs: readonly number[]): { at: number; db: number[] }[] {
  const out: { at: number; db: number[] }[] = [];
  for (const p of ear.received) {
    const pcm = decode(p);
    if (pcm) out.push({ at: p.at, db: freqs.map((f) => toneDbfs(pcm, 8000, f)) });
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : -Infinity;
};

function writeToneWav(dir: string, hz: number, ms: number): string {
  const file = join(dir, `tone-${hz}.wav`);
  writeFileSync(file, encodeWav(tone(hz, ms, 8000, AMP), 8000, 1));
  return file;
}

describe('conference: phones in one mix', () => {
  let svc: RunningService;
  let client: TestClient;
  let dir: string;
  let recordings: string;
  let n = 0;
  const ears: RtpPeer[] = [];

  const rpc = async <T,>(method: string, req: unknown): Promise<T> => {
    const r = await client.media_<T>(method, req);
    assert.equal(r.error, undefined, `${method}: ${r.error?.details}`);
    return r.response!;
  };
  const phone = async (codec: G711): Promise<Phone> => {
    const callId = `conf-${process.pid}-${++n}`;
    const { rtp_port: port } = await rpc<{ rtp_port: number }>('AllocatePort', { call_id: callId, codec });
    const ear = await RtpPeer.open();
    ears.push(ear);
    await rpc('PlayAudio', { audio_uri: 'control://set_target', server_rtp_port: port, rtp_target_addr: ear.address });
    return { port, codec, ear, callId };
  };
  const events = (type: string): PlatformEventLine[] =>
    svc.lines
      .filter((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === type)
      .map((l) => {
        const body = (l.attributes as Record<string, unknown>)['event.body'] as { payload_json: string };
        return { type, payload: JSON.parse(body.payload_json) as Record<string, unknown> };
      });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'conf-'));
    recordings = mkdtempSync(join(tmpdir(), 'conf-rec-'));
    svc = await startService({
      env: { RTP_SERVICE_PORT_MIN: '38000', RTP_SERVICE_PORT_MAX: '38999', LOG_LEVEL: 'info', RECORDING_FILE_ROOT: recordings, CONFERENCE_JOIN_TONE_URI: toneUri(JOIN_HZ), CONFERENCE_LEAVE_TONE_URI: toneUri(LEAVE_HZ) },
    });
    client = new TestClient(svc.grpcPort);
  });
  after(async () => {
    for (const e of ears) e.close();
    client.close();
    await svc.stop('SIGKILL');
  });

  test('five ffmpeg phones: each hears the four others and never itself; mute, deaf, a prompt to all, kick, talking events', async (t) => {
    const conf = `room-${process.pid}`;
    const info = await rpc<{ conference_id: string; participants: unknown[] }>('CreateConference', { conference_id: conf });
    assert.equal(info.conference_id, conf);
    const phones: Phone[] = [];
    for (let i = 0; i < 5; i++) phones.push(await phone(i % 2 ? 'PCMA' : 'PCMU'));
    for (const p of phones) {
      const added = await rpc<{ participant_id: string; kind: string; call_id: string }>('AddToConference', { conference_id: conf, server_rtp_port: p.port });
      assert.deepEqual([added.participant_id, added.kind, added.call_id], [p.callId, 'phone', p.callId]);
    }
    const joinedAll = performance.now();
    const listed = await rpc<{ participants: { participant_id: string }[] }>('GetConference', { conference_id: conf });
    assert.deepEqual(listed.participants.map((x) => x.participant_id).sort(), phones.map((p) => p.callId).sort());

    const capture = await captureUdp([phones[0]!.ear.port, phones[1]!.ear.port]);
    const wavs = FREQS.map((f) => writeToneWav(dir, f, 7000));
    const t0 = performance.now();
    const senders: ReturnType<typeof ffmpegSendRtp>[] = [];
    for (let i = 0; i < 5; i++) senders.push(ffmpegSendRtp({ wav: wavs[i]!, port: phones[i]!.port, codec: phones[i]!.codec, localPort: await freeUdpPort(), ssrc: 0x1000 + i }));
    const at = async (ms: number): Promise<number> => {
      const wait = t0 + ms - performance.now();
      if (wait > 0) await sleep(wait);
      return performance.now();
    };
    // When the request left and when its answer came back: a change takes effect between the
    // two, and a packet sent after it may reach the test before the answer does.
    const control = async (i: number, req: Record<string, unknown>): Promise<{ sent: number; answered: number }> => {
      const sent = performance.now();
      await rpc('UpdateConferenceParticipant', { conference_id: conf, participant_id: phones[i]!.callId, ...req });
      return { sent, answered: performance.now() };
    };

    await at(2500);
    const mute = await control(2, { mute: 'TOGGLE_ON' });
    await at(3500);
    const unmute = await control(2, { mute: 'TOGGLE_OFF' });
    await at(4000);
    const deaf = await control(4, { deaf: 'TOGGLE_ON' });
    await at(5000);
    const undeaf = await control(4, { deaf: 'TOGGLE_OFF' });
    const [muted, unmuted, deafened, undeafened] = [mute.answered, unmute.answered, deaf.answered, undeaf.answered];
    await at(5400);
    const promptWav = encodeWav(tone(PROMPT_HZ, 400, 8000, AMP), 8000, 1);
    const played = await rpc<{ message: string }>('PlayToConference', { conference_id: conf, audio_uri: `data:audio/wav;base64,${promptWav.toString('base64')}` });
    const promptAt = performance.now();
    t.diagnostic(`PlayToConference: ${played.message}`);
    await at(5900);
    await rpc('RemoveFromConference', { conference_id: conf, participant_id: phones[3]!.callId, kick: true });
    const kicked = performance.now();
    const codes = await Promise.all(senders.map((s) => s.done));
    const sendersDone = performance.now();
    codes.forEach((c, i) => assert.equal(c, 0, senders[i]!.stderr()));
    await sleep(1200);
    const datagrams = await capture.stop();

    const all = FREQS.concat(PROMPT_HZ);
    const lv = phones.map((p) => levels(p.ear, all));
    const window = (i: number, from: number, to: number) => lv[i]!.filter((x) => x.at >= from && x.at < to);
    const med = (i: number, from: number, to: number, f: number) => median(window(i, from, to).map((x) => x.db[f]!));
    const lines: string[] = [];

    // 1. Everyone hears the four others and not itself (1.0 - 2.4 s: all five talk).
    for (let i = 0; i < 5; i++) {
      const w = window(i, t0 + 1000, t0 + 2400);
      assert.ok(w.length > 50, `phone ${i} received ${w.length} packets in 1.4 s`);
      const row = FREQS.map((_, f) => med(i, t0 + 1000, t0 + 2400, f));
      lines.push(`phone ${i} (${FREQS[i]} Hz) hears ${row.map((d, f) => `${FREQS[f]}:${d.toFixed(0)}`).join(' ')} dBFS`);
      for (let f = 0; f < 5; f++) {
        if (f === i) assert.ok(row[f]! < ABSENT, `phone ${i} hears its own ${FREQS[f]} Hz at ${row[f]!.toFixed(1)} dBFS`);
        else assert.ok(row[f]! > PRESENT, `phone ${i} does not hear phone ${f}'s ${FREQS[f]} Hz (${row[f]!.toFixed(1)} dBFS)`);
      }
      // Every 20 ms frame in the window: never a trace of its own voice.
      const worstOwn = Math.max(...w.map((x) => x.db[i]!));
      assert.ok(worstOwn < ABSENT, `phone ${i}: its own tone reached ${worstOwn.toFixed(1)} dBFS in one frame`);
    }

    // 2. Mute: phone 2's tone leaves everyone's audio within 100 ms and comes back after unmute.
    for (const i of [0, 1, 3, 4]) {
      const after = lv[i]!.filter((x) => x.at >= muted && x.at < unmute.sent);
      const firstGone = after.findIndex((x) => x.db[2]! < ABSENT);
      assert.ok(firstGone >= 0, `phone ${i} kept hearing muted phone 2`);
      const goneAfterMs = after[firstGone]!.at - muted;
      assert.ok(goneAfterMs <= 100, `phone 2's tone left phone ${i}'s audio ${goneAfterMs.toFixed(0)} ms after the mute answered`);
      const leaked = after.slice(firstGone).filter((x) => x.db[2]! > ABSENT).length;
      assert.equal(leaked, 0, `phone ${i} heard muted phone 2 in ${leaked} frames`);
      assert.ok(med(i, unmuted + 200, deafened, 2) > PRESENT, `phone ${i} does not hear phone 2 after unmute`);
      lines.push(`mute: phone 2 gone from phone ${i} ${goneAfterMs.toFixed(0)} ms after the answer`);
    }
    // Muted phone 2 itself still hears the others.
    assert.ok(med(2, muted + 100, unmuted, 0) > PRESENT, 'muted phone 2 stopped hearing');

    // 3. Deaf: phone 4 hears nothing while deaf, the others still hear it; then it hears again.
    // Up to the undeaf request's departure: its effect may reach the phone before its answer reaches the test.
    const deafWindow = window(4, deafened + 100, undeaf.sent);
    const loudWhileDeaf = deafWindow.filter((x) => x.db.some((d) => d > ABSENT)).length;
    assert.equal(loudWhileDeaf, 0, `deaf phone 4 heard audio in ${loudWhileDeaf} of ${deafWindow.length} packets`);
    assert.ok(med(4, undeafened + 200, promptAt, 0) > PRESENT, 'phone 4 does not hear again after undeaf');
    assert.ok(med(0, deafened + 100, undeafened, 4) > PRESENT, 'the others stopped hearing deaf phone 4');

    // 4. A prompt to the conference reaches every participant.
    for (let i = 0; i < 5; i++) {
      const best = Math.max(...window(i, promptAt, promptAt + 600).map((x) => x.db[5]!));
      assert.ok(best > PRESENT, `phone ${i} did not hear the conference prompt (${best.toFixed(1)} dBFS)`);
    }

    // Join and leave tones: the first phone heard the others join; everyone left hears the kick.
    // Four joins queue four tones; the first waits for the prompt decoder, which starts with it.
    const joinTone = Math.max(...levels(phones[0]!.ear, [JOIN_HZ]).filter((x) => x.at < joinedAll + 2000).map((x) => x.db[0]!));
    assert.ok(joinTone > PRESENT, `phone 0 did not hear the join tone (${joinTone.toFixed(1)} dBFS)`);
    for (const i of [0, 1, 2, 4]) {
      const leaveTone = Math.max(...levels(phones[i]!.ear, [LEAVE_HZ]).filter((x) => x.at > kicked - 20 && x.at < kicked + 500).map((x) => x.db[0]!));
      assert.ok(leaveTone > PRESENT, `phone ${i} did not hear the leave tone (${leaveTone.toFixed(1)} dBFS)`);
    }
    const noLeaveBefore = Math.max(...levels(phones[0]!.ear, [LEAVE_HZ]).filter((x) => x.at > t0 && x.at < kicked - 50).map((x) => x.db[0]!));
    assert.ok(noLeaveBefore < ABSENT, `a leave tone played before anyone left (${noLeaveBefore.toFixed(1)} dBFS)`);

    // 5. Kick: phone 3 leaves, its call's media ends, nobody hears it any more.
    for (const i of [0, 1, 2, 4]) assert.ok(med(i, kicked + 100, sendersDone - 100, 3) < ABSENT, `phone ${i} still hears kicked phone 3`);
    const quality = await client.media_('GetCallQuality', { server_rtp_port: phones[3]!.port });
    assert.equal(quality.error?.code, grpc.status.NOT_FOUND, 'the kicked call still has media');
    await svc.settle();
    const left = events('call.media.conference.participant.left').filter((e) => e.payload['conferenceId'] === conf);
    assert.deepEqual(left.map((e) => [e.payload['participantId'], e.payload['reason']]), [[phones[3]!.callId, 'kicked']]);

    // 6. Talking: each phone started once near the start of its tone and stopped after it ended.
    const talking = events('call.media.conference.talking').filter((e) => e.payload['conferenceId'] === conf);
    const origin = performance.timeOrigin;
    for (const [i, p] of phones.entries()) {
      const mine = talking.filter((e) => e.payload['participantId'] === p.callId);
      const flags = mine.map((e) => e.payload['talking']);
      const times = mine.map((e) => (e.payload['atUnixMs'] as number) - origin);
      const startOk = times[0]! > t0 && times[0]! < t0 + 2000;
      if (i === 3) {
        assert.deepEqual(flags, [true], `kicked phone 3: ${JSON.stringify(flags)}`);
        assert.ok(startOk);
        continue;
      }
      assert.deepEqual(flags, [true, false], `phone ${i} talking events ${JSON.stringify(flags)}`);
      assert.ok(startOk, `phone ${i} started talking ${(times[0]! - t0).toFixed(0)} ms after its phone started`);
      // The tone ends when its sender does; talking stops the hold (500 ms) after that.
      const stoppedAfterEnd = times[1]! - sendersDone;
      assert.ok(stoppedAfterEnd > 0 && stoppedAfterEnd < 1000, `phone ${i} stopped talking ${stoppedAfterEnd.toFixed(0)} ms after the tones ended`);
      lines.push(`phone ${i} talking from +${(times[0]! - t0).toFixed(0)} ms to ${stoppedAfterEnd.toFixed(0)} ms after its tone ended`);
    }

    // 7. Cadence of what phones 0 and 1 received, on kernel timestamps, while all others talked:
    // in two windows of the same run (as the live-audio test does), one of which must be in
    // spec: a shared two-core box running five ffmpeg phones and tshark beside the service
    // can stall any process for a few milliseconds once, and p99 of 130 intervals is the
    // second-worst. A service whose cadence is off fails both.
    const epochT0 = origin + t0;
    for (const i of [0, 1]) {
      const windows = [
        [500, 3100],
        [3100, 5800],
      ].map(([from, to]) => {
        const arr = datagrams.filter((d) => d.dstPort === phones[i]!.ear.port && !isRtcpPacket(d.payload) && d.atMs > epochT0 + from! && d.atMs < epochT0 + to!);
        const dev = rtpCadence(arr, 8000).map((x) => x.deviationMs).sort((a, b) => a - b);
        return { packets: arr.length, p99: dev[Math.floor(dev.length * 0.99)] ?? Infinity };
      });
      lines.push(`phone ${i} cadence: ${windows.map((w) => `${w.packets} packets, p99 deviation from 20 ms ${w.p99.toFixed(2)} ms`).join('; then ')}`);
      assert.ok(windows.every((w) => w.packets > 120), `phone ${i} received ${windows.map((w) => w.packets).join(' and ')} packets in 2.6 s windows`);
      assert.ok(windows.some((w) => w.p99 <= 5), `phone ${i} cadence p99 deviation ${windows.map((w) => w.p99.toFixed(2)).join(' and ')} ms`);
    }
    for (const l of lines) t.diagnostic(l);
    console.log(`[conference]\n  ${lines.join('\n  ')}`);
    await rpc('EndConference', { conference_id: conf });
    await svc.settle();
    const ended = events('call.media.conference.ended').filter((e) => e.payload['conferenceId'] === conf);
    assert.equal(ended.length, 1);
    for (const p of phones) await client.media_('ReleasePort', { rtp_port: p.port });
  });

  test('a participant whose packets stall, then come in a burst, does not disturb the others', async (t) => {
    const conf = `stall-${process.pid}`;
    await rpc('CreateConference', { conference_id: conf });
    const phones = [await phone('PCMU'), await phone('PCMA'), await phone('PCMU')];
    for (const p of phones) await rpc('AddToConference', { conference_id: conf, server_rtp_port: p.port });
    const capture = await captureUdp([phones[0]!.ear.port, phones[1]!.ear.port]);
    // 9 s of tones: p99 over some 400 intervals is not one scheduling hiccup of a shared box.
    const wavs = [writeToneWav(dir, FREQS[0]!, 9000), writeToneWav(dir, FREQS[1]!, 9000)];
    const t0 = performance.now();
    const local = [await freeUdpPort(), await freeUdpPort()];
    const senders = [0, 1].map((i) => ffmpegSendRtp({ wav: wavs[i]!, port: phones[i]!.port, codec: phones[i]!.codec, localPort: local[i]!, ssrc: 0x2000 + i }));
    // Phone 2 from the test: 1 s of its tone, 500 ms of nothing, the missed 25 packets at once, 6.5 s more.
    const bursty = await RtpPeer.open();
    ears.push(bursty);
    const pcm = tone(FREQS[2]!, 8000, 8000, AMP);
    let seq = 100;
    let ts = 1000;
    const packet = (k: number): Buffer => buildRtp({ marker: k === 0, payloadType: 0, sequenceNumber: seq++ & 0xffff, timestamp: (ts += 160) >>> 0, ssrc: 0x2002 }, encodeG711('PCMU', pcm.subarray(k * 160, k * 160 + 160)));
    const start = performance.now();
    const stallFrom = 50;
    const stallTo = 75;
    let stalledAt = 0;
    let burstAt = 0;
    for (let k = 0; k < 400; k++) {
      if (k === stallTo) {
        burstAt = performance.now();
        for (let j = stallFrom; j < stallTo; j++) bursty.sendRaw(packet(j), phones[2]!.port);
      }
      if (k === stallFrom - 1) stalledAt = performance.now();
      if (k < stallFrom || k >= stallTo) bursty.sendRaw(packet(k), phones[2]!.port);
      const wait = start + (k + 1) * 20 - performance.now();
      if (wait > 0) await sleep(wait);
    }
    for (const [i, s] of senders.entries()) assert.equal(await s.done, 0, `sender ${i}: ${s.stderr()}`);
    await sleep(300);
    const datagrams = await capture.stop();
    const lines: string[] = [];
    const epochT0 = performance.timeOrigin + t0;
    for (const i of [0, 1]) {
      const arr = datagrams.filter((d) => d.dstPort === phones[i]!.ear.port && !isRtcpPacket(d.payload) && d.atMs > epochT0 + 600 && d.atMs < epochT0 + 8500);
      const cadence = rtpCadence(arr, 8000);
      const dev = cadence.map((x) => x.deviationMs).sort((a, b) => a - b);
      const p99 = dev[Math.floor(dev.length * 0.99)] ?? Infinity;
      const worstAt = cadence.map((x) => ({ d: x.deviationMs, at: x.atMs - (performance.timeOrigin + burstAt) })).sort((x, y) => y.d - x.d).slice(0, 3);
      const worstText = worstAt.map((w) => `${w.d.toFixed(1)} ms at ${w.at.toFixed(0)} ms from the burst`).join(', ');
      // Around the stall and the burst every interval is in spec; over the whole run p99 is,
      // in one of its halves at least (a shared two-core box running the whole suite stalls a
      // process now and then, wherever the burst is; a service the burst disturbs fails both).
      const iv = cadence.map((x) => ({ d: x.deviationMs, at: x.atMs - performance.timeOrigin }));
      const near = iv.filter((x) => x.at > stalledAt - 200 && x.at < burstAt + 300);
      const halves = [iv.slice(0, iv.length >> 1), iv.slice(iv.length >> 1)].map((h) => h.map((x) => x.d).sort((x, y) => x - y)).map((h) => h[Math.floor(h.length * 0.99)] ?? Infinity);
      lines.push(`phone ${i} cadence across the stall and the burst: ${arr.length} packets, p99 deviation ${p99.toFixed(2)} ms (halves ${halves.map((h) => h.toFixed(2)).join('/')}), worst near the burst ${Math.max(...near.map((x) => x.d)).toFixed(1)} ms, worst overall ${worstText}`);
      assert.ok(arr.length > 380, `phone ${i} received ${arr.length} packets in 7.9 s`);
      // One interval of a shared box's scheduling may stray; a service the burst disturbed strays in several, or far.
      const strays = near.filter((x) => x.d > 5);
      assert.ok(near.length > 30 && strays.length <= 1 && strays.every((x) => x.d <= 15), `phone ${i} cadence around the stall and the burst: ${strays.length} intervals off by more than 5 ms, worst ${Math.max(...near.map((x) => x.d)).toFixed(2)} ms over ${near.length} intervals (worst overall ${worstText})`);
      assert.ok(halves.some((h) => h <= 5), `phone ${i} cadence p99 deviation ${p99.toFixed(2)} ms (halves ${halves.map((h) => h.toFixed(2)).join('/')})`);
    }
    // The steady phones hear each other in every frame, through the stall and the burst.
    const lv = [0, 1].map((i) => levels(phones[i]!.ear, FREQS).filter((x) => x.at > t0 + 600 && x.at < t0 + 8500));
    const other = [1, 0];
    for (const i of [0, 1]) {
      // Around the stall's end and the burst: every frame but one; over the 7.9 s: at most five
      // (a packet of an ffmpeg phone late beyond the jitter margin is concealed, stall or not;
      // a mix the burst disturbed loses many).
      const around = lv[i]!.filter((x) => x.at > stalledAt - 100 && x.at < burstAt + 300 && x.db[other[i]!]! < PRESENT).length;
      const weak = lv[i]!.filter((x) => x.db[other[i]!]! < PRESENT).length;
      lines.push(`phone ${i}: phone ${other[i]}'s tone missing in ${around} frames around the stall and burst, ${weak} of ${lv[i]!.length} overall`);
      assert.ok(around <= 1, `phone ${i} lost phone ${other[i]}'s tone in ${around} frames around the stall and the burst`);
      assert.ok(weak <= 5, `phone ${i} lost phone ${other[i]}'s tone in ${weak} frames`);
    }
    // And the bursty phone is heard again after its burst, without the backlog (at most 60 ms of it plays).
    const heardAfter = lv[0]!.filter((x) => x.at > burstAt + 200 && x.at < burstAt + 1200 && x.db[2]! > PRESENT).length;
    assert.ok(heardAfter > 40, `phone 0 heard phone 2 in ${heardAfter} frames after its burst`);
    const gapFrames = lv[0]!.filter((x) => x.at > stalledAt + 100 && x.at < burstAt - 20 && x.db[2]! > ABSENT).length;
    assert.equal(gapFrames, 0, 'phone 2 was heard while it sent nothing');
    for (const l of lines) t.diagnostic(l);
    console.log(`[conference] ${lines.join('; ')}`);
    await rpc('EndConference', { conference_id: conf });
    for (const p of phones) await client.media_('ReleasePort', { rtp_port: p.port });
  });

  test('bad requests get clear statuses and change nothing; a call that leaves is an ordinary call again', async () => {
    const code = async (method: string, req: object): Promise<number | undefined> => (await client.media_(method, req)).error?.code;
    const conf = `rules-${process.pid}`;
    assert.equal(await code('CreateConference', { conference_id: '' }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await code('CreateConference', { conference_id: 'a b' }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await code('CreateConference', { conference_id: conf, max_participants: 100_000 }), grpc.status.INVALID_ARGUMENT);
    await rpc('CreateConference', { conference_id: conf, max_participants: 2, end_when_empty: true });
    assert.equal(await code('CreateConference', { conference_id: conf }), grpc.status.ALREADY_EXISTS);
    const [a, b, c] = [await phone('PCMU'), await phone('PCMU'), await phone('PCMU')];
    assert.equal(await code('AddToConference', { conference_id: 'nope', server_rtp_port: a.port }), grpc.status.NOT_FOUND);
    assert.equal(await code('AddToConference', { conference_id: conf }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await code('AddToConference', { conference_id: conf, server_rtp_port: 38999 }), grpc.status.NOT_FOUND);
    assert.equal(await code('AddToConference', { conference_id: conf, server_rtp_port: a.port, gain_db: 50 }), grpc.status.INVALID_ARGUMENT);
    await rpc('BridgeCalls', { server_rtp_port_a: b.port, server_rtp_port_b: c.port });
    assert.equal(await code('AddToConference', { conference_id: conf, server_rtp_port: b.port }), grpc.status.FAILED_PRECONDITION);
    await rpc('UnbridgeCalls', { server_rtp_port: b.port });
    await rpc('AddToConference', { conference_id: conf, server_rtp_port: a.port });
    assert.equal(await code('AddToConference', { conference_id: conf, server_rtp_port: a.port }), grpc.status.ALREADY_EXISTS);
    assert.equal(await code('BridgeCalls', { server_rtp_port_a: a.port, server_rtp_port_b: c.port }), grpc.status.FAILED_PRECONDITION);
    await rpc('AddToConference', { conference_id: conf, call_id: b.callId });
    assert.equal(await code('AddToConference', { conference_id: conf, server_rtp_port: c.port }), grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(await code('RemoveFromConference', { conference_id: conf, participant_id: 'nobody' }), grpc.status.NOT_FOUND);
    assert.equal(await code('UpdateConferenceParticipant', { conference_id: conf, participant_id: a.callId, set_gain: true, gain_db: -90 }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await code('PlayToConference', { conference_id: conf, audio_uri: 'control://enable_echo' }), grpc.status.INVALID_ARGUMENT);
    assert.equal(await code('PlayToConference', { conference_id: conf, audio_uri: 'file:///etc/passwd' }) !== undefined, true);
    const state = await rpc<{ participants: { participant_id: string; muted: boolean; gain_db: number }[] }>('GetConference', { conference_id: conf });
    assert.deepEqual(state.participants.map((p) => [p.participant_id, p.muted, p.gain_db]).sort(), [[a.callId, false, 0], [b.callId, false, 0]].sort());

    // DTMF of a participant names the conference.
    const keypad = await RtpPeer.open();
    ears.push(keypad);
    await keypad.sendDtmf('7', a.port);
    await svc.waitForLog((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === 'call.media.dtmf.received' && JSON.stringify(l.attributes).includes(conf));

    // A removed call hears its own prompts again on the clock; a released one leaves as call_ended.
    await rpc('RemoveFromConference', { conference_id: conf, participant_id: a.callId });
    const before = a.ear.received.length;
    const promptWav = encodeWav(tone(PROMPT_HZ, 300, 8000, AMP), 8000, 1);
    await rpc('PlayAudio', { audio_uri: `data:audio/wav;base64,${promptWav.toString('base64')}`, server_rtp_port: a.port });
    await sleep(500);
    const prompt = a.ear.received.slice(before).map(decode).filter((x): x is Int16Array => x !== null);
    assert.ok(prompt.length >= 13, `a call out of the conference sent ${prompt.length} prompt packets`);
    assert.ok(prompt.some((f) => toneDbfs(f, 8000, PROMPT_HZ) > PRESENT));
    await client.media_('ReleasePort', { rtp_port: b.port });
    await svc.waitForLog((l) => l.event === 'PLATFORM_EVENT' && (l.attributes as Record<string, unknown>)['event.type'] === 'call.media.conference.ended' && JSON.stringify(l.attributes).includes(conf));
    const left = events('call.media.conference.participant.left').filter((e) => e.payload['conferenceId'] === conf);
    assert.deepEqual(left.map((e) => e.payload['reason']), ['removed', 'call_ended']);
    assert.equal(await code('GetConference', { conference_id: conf }), grpc.status.NOT_FOUND);
    for (const p of [a, c]) await client.media_('ReleasePort', { rtp_port: p.port });
  });

  test('a conference is recorded, forked and spoken to as a whole: every participant in the file and the fork, the injected voice heard by all', async (t) => {
    const conf = `whole-${process.pid}`;
    await rpc('CreateConference', { conference_id: conf });
    const phones = [await phone('PCMU'), await phone('PCMA'), await phone('PCMU')];
    for (const p of phones) await rpc('AddToConference', { conference_id: conf, server_rtp_port: p.port });
    await rpc('StartRecording', { conference_id: conf, output_uri: 'file:///conferences/', channel_layout: 'mono', call_id: conf, participant_tracks: true });
    const fork = (client.media as unknown as Record<string, (r: unknown) => Stream>).StreamAudio!({ conference_id: conf, sample_rate: 8000 });
    const forked: Int16Array[] = [];
    let format: Record<string, unknown> | undefined;
    fork.on('data', (m: { format?: Record<string, unknown>; frame?: { data: Buffer } }) => {
      if (m.format) format = m.format;
      if (m.frame) forked.push(new Int16Array(m.frame.data.buffer.slice(m.frame.data.byteOffset, m.frame.data.byteOffset + m.frame.data.length)));
    });
    fork.on('error', () => {});
    const wavs = [0, 1, 2].map((i) => writeToneWav(dir, FREQS[i]!, 3000));
    const local = [await freeUdpPort(), await freeUdpPort(), await freeUdpPort()];
    // Each phone starts 300 ms after the one before: every track's start is its own frame of the mix.
    const senders: ReturnType<typeof ffmpegSendRtp>[] = [];
    for (const i of [0, 1, 2]) {
      senders.push(ffmpegSendRtp({ wav: wavs[i]!, port: phones[i]!.port, codec: phones[i]!.codec, localPort: local[i]!, ssrc: 0x3000 + i }));
      if (i < 2) await sleep(300);
    }
    await sleep(1200);
    // A voice for everyone: 600 ms of its tone through InjectAudio, 8 kHz PCM.
    const inject = (client.media as unknown as Record<string, () => Duplex>).InjectAudio!();
    const replies: Record<string, unknown>[] = [];
    inject.on('data', (m: Record<string, unknown>) => replies.push(m));
    const injected = new Promise((r) => inject.on('end', r));
    inject.write({ start: { conference_id: conf, encoding: 'AUDIO_ENCODING_PCM_S16LE', sample_rate: 8000 } });
    const voice = tone(PROMPT_HZ, 600, 8000, AMP);
    const injectAt = performance.now();
    inject.write({ audio: Buffer.from(voice.buffer) });
    inject.end();
    await injected;
    for (const [i, s] of senders.entries()) assert.equal(await s.done, 0, `sender ${i}: ${s.stderr()}`);
    await sleep(300);
    await rpc('StopRecording', { conference_id: conf });
    fork.cancel();
    assert.equal((await client.media_('StopRecording', { conference_id: conf })).error?.code, grpc.status.FAILED_PRECONDITION, 'a second stop found a recording');
    assert.equal((replies[0]?.['ready'] as Record<string, unknown> | undefined)?.['call_id'], conf);

    // Every phone heard the injected voice.
    for (const [i, p] of phones.entries()) {
      const best = Math.max(...levels(p.ear, [PROMPT_HZ]).filter((x) => x.at > injectAt && x.at < injectAt + 1000).map((x) => x.db[0]!));
      assert.ok(best > PRESENT, `phone ${i} did not hear the voice injected into the conference (${best.toFixed(1)} dBFS)`);
    }
    // The recording and the fork hold every participant and the injected voice.
    const file = join(recordings, 'conferences', ...new Date().toISOString().slice(0, 10).split('-'), `${conf}.wav`);
    await eventually(() => existsSync(file), 10_000);
    const [mono] = ffmpegDecodeChannels(file, 1);
    const streams = { recording: mono!, fork: concat(forked) };
    assert.equal(format?.['media_type'], 'audio/L16;rate=8000;channels=1');
    const lines: string[] = [];
    for (const [what, pcm] of Object.entries(streams)) {
      // In 100 ms windows (800 samples): each participant's tone is in most of the talk time.
      const win = 800;
      const found = [...FREQS.slice(0, 3), PROMPT_HZ].map((hz) => {
        let n = 0;
        for (let off = 0; off + win <= pcm.length; off += win) if (toneDbfs(pcm.subarray(off, off + win), 8000, hz) > PRESENT) n++;
        return n;
      });
      lines.push(`${what}: ${(pcm.length / 8000).toFixed(2)} s; 100 ms windows holding 400/650/950/${PROMPT_HZ} Hz: ${found.join('/')}`);
      for (let f = 0; f < 3; f++) assert.ok(found[f]! >= 18, `the conference ${what} holds phone ${f}'s tone in only ${found[f]} windows of 100 ms`);
      assert.ok(found[3]! >= 4 && found[3]! <= 8, `the conference ${what} holds the injected 600 ms voice in ${found[3]} windows of 100 ms`);
    }
    // One track per participant beside the mix: its own tone only, and on the mix's timeline:
    // the 20 ms frames where a participant's tone starts and ends are the same in both files.
    const frameDb = (pcm: Int16Array, hz: number): number[] => Array.from({ length: Math.floor(pcm.length / 160) }, (_, k) => toneDbfs(pcm.subarray(k * 160, k * 160 + 160), 8000, hz));
    const span = (db: number[]): [number, number] => [db.findIndex((d) => d > PRESENT), db.length - 1 - [...db].reverse().findIndex((d) => d > PRESENT)];
    for (const [i, p] of phones.entries()) {
      const trackFile = join(recordings, 'conferences', ...new Date().toISOString().slice(0, 10).split('-'), `${conf}.${p.callId}.wav`);
      await eventually(() => existsSync(trackFile), 10_000);
      const [track] = ffmpegDecodeChannels(trackFile, 1);
      assert.equal(track!.length, mono!.length, `track ${i} is ${track!.length} samples, the mix ${mono!.length}`);
      const own = span(frameDb(track!, FREQS[i]!));
      const inMix = span(frameDb(mono!, FREQS[i]!));
      const others = [0, 1, 2].filter((j) => j !== i).map((j) => Math.max(...frameDb(track!, FREQS[j]!)));
      lines.push(`track ${i}: its tone in frames ${own.join('-')}, in the mix ${inMix.join('-')}; the others' tones at most ${Math.max(...others).toFixed(0)} dBFS`);
      assert.ok(own[0] >= 0, `track ${i} does not hold its participant's tone`);
      assert.ok(Math.abs(own[0] - inMix[0]) <= 1 && Math.abs(own[1] - inMix[1]) <= 1, `track ${i} is off the mix: ${own.join('-')} against ${inMix.join('-')}`);
      assert.ok(Math.max(...others) < ABSENT, `track ${i} holds other participants' tones`);
    }
    for (const l of lines) t.diagnostic(l);
    console.log(`[conference] ${lines.join('; ')}`);
    await rpc('EndConference', { conference_id: conf });
    for (const p of phones) await client.media_('ReleasePort', { rtp_port: p.port });
  });
});
