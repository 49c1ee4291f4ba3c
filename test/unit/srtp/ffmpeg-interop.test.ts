import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRtcp, SrtpSession } from '../../../src/rtp-bridge/srtp/context.ts';
import { generateKeyParams, parseKeyParams } from '../../../src/rtp-bridge/srtp/sdes.ts';
import type { SrtpSuite } from '../../../src/rtp-bridge/srtp/suites.ts';

const FFMPEG = '/usr/bin/ffmpeg';
const skip = existsSync(FFMPEG) ? false : `${FFMPEG} is not installed`;
/** The suites Debian's ffmpeg 5.1 implements. */
const SUITES: SrtpSuite[] = ['AES_CM_128_HMAC_SHA1_80', 'AES_CM_128_HMAC_SHA1_32'];
const RATE = 8000;
const TONE = 1000;

// G.711 mu-law, inline so this test depends on nothing but the SRTP code.
function ulawDecode(u: number): number {
  const v = ~u & 0xff;
  const magnitude = ((((v & 0x0f) << 3) + 0x84) << ((v >> 4) & 7)) - 0x84;
  return v & 0x80 ? -magnitude : magnitude;
}

function ulawEncode(sample: number): number {
  let s = Math.max(-32635, Math.min(32635, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (s < 0) s = -s;
  s += 0x84;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  return ~(sign | (exponent << 4) | ((s >> (exponent + 3)) & 0x0f)) & 0xff;
}

/** Share of the signal's energy at `freq` (Goertzel); 1 for a pure tone, near 0 for noise. */
function toneShare(x: ArrayLike<number>, freq: number): number {
  const n = x.length - (x.length % (RATE / freq)); // whole periods: no leakage
  const coeff = 2 * Math.cos((2 * Math.PI * freq) / RATE);
  let s1 = 0;
  let s2 = 0;
  let energy = 0;
  for (let i = 0; i < n; i++) {
    const v = x[i]!;
    const s0 = v + coeff * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += v * v;
  }
  if (energy === 0) return 0;
  return (2 * (s1 * s1 + s2 * s2 - coeff * s1 * s2)) / (n * energy);
}

function rms(x: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < x.length; i++) e += x[i]! * x[i]!;
  return Math.sqrt(e / Math.max(1, x.length));
}

function bindUdp(port = 0): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    s.once('error', reject);
    s.bind(port, '127.0.0.1', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ffmpeg did not exit within ${timeoutMs} ms`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** An even port whose odd neighbour (ffmpeg's RTCP port) is free too, as far as can be told. */
async function freeRtpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const a = await bindUdp();
    const port = a.address().port;
    a.close();
    if (port % 2 !== 0 || port >= 65534) continue;
    try {
      const rtpSock = await bindUdp(port);
      const rtcpSock = await bindUdp(port + 1);
      rtpSock.close();
      rtcpSock.close();
      return port;
    } catch {
      // taken meanwhile; try another
    }
  }
  throw new Error('no free UDP port pair');
}

/** Whether something holds the UDP port (Linux /proc); probing by binding would race ffmpeg. */
function udpPortBound(port: number): boolean {
  const suffix = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return ['/proc/net/udp', '/proc/net/udp6'].some((file) => {
    if (!existsSync(file)) return false;
    return readFileSync(file, 'utf8').split('\n').some((line) => line.trim().split(/\s+/)[1]?.endsWith(suffix));
  });
}

function kill(child: ChildProcess | undefined): void {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

for (const suite of SUITES) {
  test(`ffmpeg sends ${suite}: every packet unprotects, across a sequence wrap, and is a 1 kHz tone`, { skip, timeout: 20000 }, async (t) => {
    const key = randomBytes(16);
    const salt = randomBytes(14);
    const rx = new SrtpSession(suite, key, salt);
    const sock = await bindUdp();
    const seqs: number[] = [];
    const ssrcs = new Set<number>();
    const samples: number[] = [];
    let rtcp = 0;
    let dropped = 0;
    sock.on('message', (msg) => {
      if (isRtcp(msg)) {
        rtcp++;
        return;
      }
      const plain = rx.unprotect(msg);
      if (!plain) {
        dropped++;
        return;
      }
      seqs.push(plain.readUInt16BE(2));
      ssrcs.add(plain.readUInt32BE(8));
      for (let i = 12; i < plain.length; i++) samples.push(ulawDecode(plain[i]!));
    });
    let ff: ChildProcess | undefined;
    try {
      let stderr = '';
      ff = spawn(FFMPEG, [
        '-nostdin', '-hide_banner', '-loglevel', 'error', '-re',
        '-f', 'lavfi', '-i', `sine=frequency=${TONE}:duration=1`,
        '-ar', String(RATE), '-ac', '1', '-c:a', 'pcm_mulaw',
        '-f', 'rtp', '-ssrc', '1234', '-payload_type', '0', '-seq', '65500',
        '-srtp_out_suite', suite, '-srtp_out_params', Buffer.concat([key, salt]).toString('base64'),
        `srtp://127.0.0.1:${sock.address().port}`,
      ], { stdio: ['ignore', 'ignore', 'pipe'] });
      ff.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      assert.equal(await exited(ff, 15000), 0, stderr);
      await sleep(200); // the last datagrams
    } finally {
      kill(ff);
      sock.close();
    }
    assert.equal(dropped, 0, `${dropped} packets failed to unprotect (auth failures ${rx.authFailures}, replays ${rx.replays})`);
    assert.ok(seqs.length >= 40, `only ${seqs.length} RTP packets arrived (and ${rtcp} RTCP)`);
    assert.deepEqual([...ssrcs], [1234]);
    for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], (seqs[i - 1]! + 1) & 0xffff, 'consecutive sequence numbers');
    assert.ok(seqs.includes(65535) && seqs.includes(0), `the sequence number wrapped (${seqs[0]}..${seqs.at(-1)})`);
    const share = toneShare(samples, TONE);
    t.diagnostic(`${seqs.length} packets (seq ${seqs[0]}..${seqs.at(-1)}), ${samples.length} samples, tone share ${share.toFixed(4)}, ${rtcp} RTCP`);
    assert.ok(share > 0.95, `the audio is a ${TONE} Hz tone (share ${share.toFixed(3)})`);
    assert.ok(rms(samples) > 1000, `and not silence (rms ${rms(samples).toFixed(0)})`);
  });
}

/**
 * Sends 1 s of a 1 kHz tone as SRTP to an ffmpeg reading an SDP with `a=crypto`, and returns
 * what ffmpeg decoded as 16-bit samples. `sdpKeyParams` lets a test give ffmpeg a wrong key.
 */
async function sendToFfmpeg(suite: SrtpSuite, sdpKeyParams?: string): Promise<{ pcm: Int16Array; stderr: string }> {
  const keyParams = generateKeyParams(suite);
  const { masterKey, masterSalt } = parseKeyParams(suite, keyParams);
  const tx = new SrtpSession(suite, masterKey, masterSalt);
  const dir = mkdtempSync(join(tmpdir(), 'srtp-interop-'));
  const sender = await bindUdp();
  let ff: ChildProcess | undefined;
  try {
    const port = await freeRtpPort();
    const sdp = join(dir, 'stream.sdp');
    writeFileSync(sdp, [
      'v=0', 'o=- 0 0 IN IP4 127.0.0.1', 's=srtp interop', 'c=IN IP4 127.0.0.1', 't=0 0',
      `m=audio ${port} RTP/SAVP 0`, 'a=rtpmap:0 PCMU/8000', `a=crypto:1 ${suite} ${sdpKeyParams ?? keyParams}`, '',
    ].join('\r\n'));
    ff = spawn(FFMPEG, [
      '-nostdin', '-hide_banner', '-loglevel', 'error',
      '-protocol_whitelist', 'file,udp,rtp,srtp,crypto', '-i', sdp,
      '-f', 's16le', '-ac', '1', '-ar', String(RATE), 'pipe:1',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    ff.stdout!.on('data', (d: Buffer) => out.push(d));
    ff.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let waited = 0; !udpPortBound(port); waited += 20) {
      if (waited > 10000 || ff.exitCode !== null) throw new Error(`ffmpeg never bound port ${port}: ${stderr}`);
      await sleep(20);
    }
    const ssrc = 0x5eed5eed;
    const start = performance.now();
    for (let n = 0; n < 50; n++) {
      const packet = Buffer.alloc(12 + 160);
      packet[0] = 0x80;
      packet[1] = n === 0 ? 0x80 : 0; // PCMU; marker on the first packet
      packet.writeUInt16BE((65510 + n) & 0xffff, 2); // wraps after 26 packets
      packet.writeUInt32BE(n * 160, 4);
      packet.writeUInt32BE(ssrc, 8);
      for (let i = 0; i < 160; i++) packet[12 + i] = ulawEncode(8000 * Math.sin((2 * Math.PI * TONE * (n * 160 + i)) / RATE));
      sender.send(tx.protect(packet), port, '127.0.0.1');
      await sleep(Math.max(0, start + (n + 1) * 20 - performance.now()));
    }
    await sleep(300);
    // Once transcoding has started, ffmpeg's blocking read only gives up on a second signal;
    // it then still finishes the output cleanly.
    ff.kill('SIGTERM');
    await sleep(100);
    ff.kill('SIGTERM');
    await exited(ff, 5000);
    const bytes = Buffer.concat(out);
    const pcm = new Int16Array(bytes.length >> 1);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(2 * i);
    return { pcm, stderr };
  } finally {
    kill(ff);
    sender.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const suite of SUITES) {
  test(`ffmpeg receives ${suite} from an SDP a=crypto line and decodes the 1 kHz tone, across a sequence wrap`, { skip, timeout: 20000 }, async (t) => {
    const { pcm, stderr } = await sendToFfmpeg(suite);
    t.diagnostic(`ffmpeg decoded ${pcm.length} samples, tone share ${toneShare(pcm, TONE).toFixed(4)}, rms ${rms(pcm).toFixed(0)}`);
    assert.ok(pcm.length >= 48 * 160, `ffmpeg decoded ${pcm.length} samples of the 8000 sent: ${stderr}`);
    const share = toneShare(pcm, TONE);
    assert.ok(share > 0.95, `the audio is a ${TONE} Hz tone (share ${share.toFixed(3)})`);
    assert.ok(rms(pcm) > 3000, `at the level sent (rms ${rms(pcm).toFixed(0)})`);
  });
}

test('control: ffmpeg given another key decodes none of it (the interop checks can fail)', { skip, timeout: 20000 }, async () => {
  const { pcm } = await sendToFfmpeg('AES_CM_128_HMAC_SHA1_80', generateKeyParams('AES_CM_128_HMAC_SHA1_80'));
  assert.ok(pcm.length < 160 || toneShare(pcm, TONE) < 0.5, `ffmpeg decoded ${pcm.length} samples with a wrong key`);
});
