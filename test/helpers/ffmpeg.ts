import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type G711 = 'PCMU' | 'PCMA';
const ENCODER: Record<G711, string> = { PCMU: 'pcm_mulaw', PCMA: 'pcm_alaw' };
const PT: Record<G711, number> = { PCMU: 0, PCMA: 8 };

async function canBind(port: number): Promise<boolean> {
  const s = createSocket('udp4');
  const ok = await new Promise<boolean>((r) => {
    s.once('error', () => r(false));
    s.bind(port, '0.0.0.0', () => r(true));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/**
 * An even UDP port whose odd neighbour is free too (RTP peers such as ffmpeg take the pair),
 * picked at random in a range the service's tests never allocate from.
 */
export async function freeUdpPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 50000 + 2 * Math.floor(Math.random() * 5000);
    if ((await canBind(port)) && (await canBind(port + 1))) return port;
  }
  throw new Error('no free even UDP port pair');
}

function udpPortBound(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  return ['/proc/net/udp', '/proc/net/udp6'].some((f) => readFileSync(f, 'utf8').split('\n').some((l) => l.trim().split(/\s+/)[1]?.endsWith(`:${hex}`)));
}

export interface FfmpegRun {
  proc: ChildProcess;
  done: Promise<number | null>;
  stderr: () => string;
}

function run(args: string[]): FfmpegRun {
  const proc = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { proc, done: once(proc, 'exit').then(([c]) => c as number | null), stderr: () => err };
}

/** ffmpeg as the phone: sends a WAV as 20 ms G.711 RTP (or SRTP) in real time. */
export function ffmpegSendRtp(opts: {
  wav: string;
  port: number;
  codec: G711;
  localPort: number;
  ssrc?: number;
  srtp?: { suite: string; params: string };
  /** Send RTCP to the RTP port itself (rtcp-mux, RFC 5761) instead of the port after it. */
  rtcpMux?: boolean;
}): FfmpegRun {
  const proto = opts.srtp ? 'srtp' : 'rtp';
  // pkt_size bounds the payload, so each packet carries 20 ms (160 samples); ffmpeg's SRTP
  // muxer keeps 14 bytes of it for the tag (whatever the suite).
  const pktSize = 12 + 160 + (opts.srtp ? 14 : 0);
  // -re paces whole demuxed packets (a WAV reads 256 ms at a time); a lavfi source cut into
  // 160-sample frames makes it send one packet every 20 ms, as a phone does.
  const args = ['-re', '-f', 'lavfi', '-i', `amovie=${opts.wav},asetnsamples=n=160:p=1`, '-ac', '1', '-ar', '8000', '-c:a', ENCODER[opts.codec], '-f', 'rtp', '-payload_type', String(PT[opts.codec]), '-ssrc', String(opts.ssrc ?? 0x1234abcd)];
  if (opts.srtp) args.push('-srtp_out_suite', opts.srtp.suite, '-srtp_out_params', opts.srtp.params);
  args.push(`${proto}://127.0.0.1:${opts.port}?localrtpport=${opts.localPort}&pkt_size=${pktSize}${opts.rtcpMux ? `&rtcpport=${opts.port}` : ''}`);
  return run(args);
}

export interface Receiver {
  port: number;
  /** Stops ffmpeg and returns the decoded 8 kHz mono PCM. */
  stop(): Promise<Int16Array>;
}

/** ffmpeg as the phone's ear: an SDP with the codec (and a=crypto for SRTP), decoded to PCM. */
export async function ffmpegReceiveRtp(opts: { codec: G711 | 'OPUS'; payloadType?: number; port?: number; crypto?: { suite: string; keyParams: string } }): Promise<Receiver> {
  const port = opts.port ?? (await freeUdpPort());
  const dir = mkdtempSync(join(tmpdir(), 'ffrecv-'));
  const sdp = join(dir, 'in.sdp');
  const out = join(dir, 'out.raw');
  const pt = opts.codec === 'OPUS' ? (opts.payloadType ?? 111) : PT[opts.codec];
  const lines = [
    'v=0',
    'o=- 0 0 IN IP4 127.0.0.1',
    's=media-test',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} ${opts.crypto ? 'RTP/SAVP' : 'RTP/AVP'} ${pt}`,
    opts.codec === 'OPUS' ? `a=rtpmap:${pt} opus/48000/2` : `a=rtpmap:${pt} ${opts.codec}/8000`,
    ...(opts.crypto ? [`a=crypto:1 ${opts.crypto.suite} ${opts.crypto.keyParams}`] : []),
    '',
  ];
  writeFileSync(sdp, lines.join('\n'));
  // The SDP says everything about the stream: no probing, and every packet is written at once.
  const r = run(['-protocol_whitelist', 'file,udp,rtp,srtp,crypto', '-analyzeduration', '0', '-probesize', '32', '-i', sdp, '-flush_packets', '1', '-f', 's16le', '-ar', '8000', '-ac', '1', '-y', out]);
  const deadline = Date.now() + 15_000;
  while (!udpPortBound(port)) {
    if (Date.now() > deadline || r.proc.exitCode !== null) {
      r.proc.kill('SIGKILL');
      throw new Error(`ffmpeg receiver did not start on ${port} (exit ${r.proc.exitCode}): ${r.stderr()}`);
    }
    await new Promise((res) => setTimeout(res, 20));
  }
  return {
    port,
    async stop() {
      // A blocking read ignores the first signal; the second ends it cleanly.
      r.proc.kill('SIGTERM');
      const again = setTimeout(() => r.proc.kill('SIGTERM'), 300);
      const kill = setTimeout(() => r.proc.kill('SIGKILL'), 3000);
      await r.done;
      clearTimeout(again);
      clearTimeout(kill);
      const buf = readFileSync(out);
      return new Int16Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + (buf.length & ~1)));
    },
  };
}

/** Decodes any audio file with ffmpeg into 8 kHz 16-bit channels (what the tests compare). */
export function ffmpegDecodeChannels(file: string, channels: 1 | 2, rate = 8000): Int16Array[] {
  const raw = execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-i', file, '-f', 's16le', '-ac', String(channels), '-ar', String(rate), 'pipe:1'], { maxBuffer: 512 * 1024 * 1024 });
  const all = new Int16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + (raw.length & ~1)));
  const out = Array.from({ length: channels }, () => new Int16Array(Math.floor(all.length / channels)));
  for (let i = 0; i < out[0]!.length; i++) for (let c = 0; c < channels; c++) out[c]![i] = all[i * channels + c]!;
  return out;
}

/** Duration, rate and channels as ffprobe reads them from the container. */
export function ffprobe(file: string): { duration: number; sampleRate: number; channels: number; codec: string } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-show_entries', 'stream=sample_rate,channels,codec_name:format=duration', '-of', 'json', file]).toString();
  const j = JSON.parse(out) as { streams: { sample_rate: string; channels: number; codec_name: string }[]; format: { duration: string } };
  const s = j.streams[0]!;
  return { duration: Number(j.format.duration), sampleRate: Number(s.sample_rate), channels: s.channels, codec: s.codec_name };
}
