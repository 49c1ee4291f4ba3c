import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeAudio, sniffAudio } from '../../../src/codecs/decode-audio.ts';
import { encodeWav } from '../../../src/codecs/wav.ts';
import { MediaError } from '../../../src/errors/media-error.ts';
import { fitSine, noise, sine } from './signal.ts';

const rejectsWith = (code: string, pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof MediaError, `not a MediaError: ${String(err)}`);
  assert.equal(err.code, code);
  assert.match(err.message, pattern);
  return true;
};

const OPTS = { maxSeconds: 10, timeoutMs: 10000 };
const NO_FFMPEG = '/nonexistent/ffmpeg';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
const encoders = hasFfmpeg ? spawnSync('ffmpeg', ['-hide_banner', '-encoders']).stdout.toString() : '';
const hasMp3 = /\bmp3\b/.test(encoders);

/** Makes a file with ffmpeg from a lavfi source; returns its bytes. */
function ffmpegFile(name: string, args: string[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'decode-audio-'));
  try {
    const file = join(dir, name);
    const r = spawnSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-y', ...args, file]);
    assert.equal(r.status, 0, r.stderr.toString());
    return readFileSync(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('sniffAudio recognises WAV and MP3 by their first bytes', () => {
  assert.equal(sniffAudio(encodeWav(new Int16Array(4), 8000, 1)), 'wav');
  assert.equal(sniffAudio(Buffer.from('ID3\x04\0\0\0\0\0\0')), 'mp3');
  assert.equal(sniffAudio(Uint8Array.of(0xff, 0xfb, 0x90, 0x64)), 'mp3'); // MPEG-1 layer III
  assert.equal(sniffAudio(Uint8Array.of(0xff, 0xf3, 0x64, 0xc4)), 'mp3'); // MPEG-2 layer III
  assert.equal(sniffAudio(Uint8Array.of(0xff, 0xf1, 0x50, 0x80)), 'unknown'); // AAC ADTS, layer bits 00
  assert.equal(sniffAudio(Buffer.from('OggS\0\x02')), 'unknown');
  assert.equal(sniffAudio(Buffer.from('RIFF\0\0\0\0AVI ')), 'unknown');
  assert.equal(sniffAudio(new Uint8Array(0)), 'unknown');
});

test('WAV is decoded in-process to mono at its own rate', async () => {
  const left = sine(440, 16000, 16000, 8000);
  const stereo = new Int16Array(32000);
  for (let i = 0; i < 16000; i++) {
    stereo[2 * i] = left[i]!;
    stereo[2 * i + 1] = 1000;
  }
  // no ffmpeg is reachable, so this can only succeed without it
  const audio = await decodeAudio(encodeWav(stereo, 16000, 2), { ...OPTS, ffmpegPath: NO_FFMPEG });
  assert.equal(audio.sampleRate, 16000);
  assert.equal(audio.channels, 1);
  assert.equal(audio.samples.length, 16000);
  for (let i = 0; i < 16000; i++) assert.equal(audio.samples[i], Math.round((left[i]! + 1000) / 2));
});

test('WAV longer than maxSeconds is refused before decoding', async () => {
  const wav = encodeWav(new Int16Array(8001), 8000, 1);
  await assert.rejects(decodeAudio(wav, { ...OPTS, maxSeconds: 1, ffmpegPath: NO_FFMPEG }), rejectsWith('invalid_argument', /^audio longer than 1 s$/));
  const ok = await decodeAudio(encodeWav(new Int16Array(8000), 8000, 1), { ...OPTS, maxSeconds: 1, ffmpegPath: NO_FFMPEG });
  assert.equal(ok.samples.length, 8000);
});

test('a broken WAV is a client error', async () => {
  const wav = encodeWav(new Int16Array(10), 8000, 1);
  wav.write('xxxx', 12, 'latin1'); // the fmt chunk loses its name
  await assert.rejects(decodeAudio(wav, { ...OPTS, ffmpegPath: NO_FFMPEG }), rejectsWith('invalid_argument', /no fmt chunk/));
});

test('options and empty input are checked', async () => {
  const wav = encodeWav(new Int16Array(10), 8000, 1);
  await assert.rejects(decodeAudio(wav, { maxSeconds: 0, timeoutMs: 1000 }), rejectsWith('invalid_argument', /maxSeconds/));
  await assert.rejects(decodeAudio(wav, { maxSeconds: 1, timeoutMs: NaN }), rejectsWith('invalid_argument', /timeoutMs/));
  await assert.rejects(decodeAudio(new Uint8Array(0), OPTS), rejectsWith('invalid_argument', /empty/));
});

test('without ffmpeg, non-WAV audio is unavailable', async () => {
  await assert.rejects(decodeAudio(Buffer.from('ID3 and then some'), { ...OPTS, ffmpegPath: NO_FFMPEG }), rejectsWith('unavailable', /ffmpeg is not installed/));
});

test('MP3 made by ffmpeg decodes to 2 s of a 440 Hz tone', { skip: !hasMp3 && 'ffmpeg without an MP3 encoder' }, async () => {
  const mp3 = ffmpegFile('tone.mp3', ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=2', '-ar', '8000', '-ac', '1', '-c:a', 'libmp3lame', '-b:a', '32k']);
  assert.equal(sniffAudio(mp3), 'mp3');
  const audio = await decodeAudio(mp3, OPTS);
  assert.equal(audio.sampleRate, 8000);
  assert.equal(audio.channels, 1);
  assert.ok(Math.abs(audio.samples.length / 8000 - 2) < 0.1, `${audio.samples.length / 8000} s`);
  const fit = fitSine(audio.samples, 440, 8000, 2000, 14000);
  assert.ok(Math.abs(fit.amplitude / 4096 - 1) < 0.1, `amplitude ${fit.amplitude}`);
  assert.ok(fit.snrDb > 20, `SNR ${fit.snrDb.toFixed(1)} dB`);
  // the tone is at 440 Hz, not merely some tone
  assert.ok(fitSine(audio.samples, 450, 8000, 2000, 14000).amplitude < fit.amplitude / 10);
});

test('MP3 longer than maxSeconds is refused', { skip: !hasMp3 && 'ffmpeg without an MP3 encoder' }, async () => {
  const mp3 = ffmpegFile('long.mp3', ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=5', '-ar', '16000', '-ac', '1', '-c:a', 'libmp3lame']);
  await assert.rejects(decodeAudio(mp3, { ...OPTS, maxSeconds: 1 }), rejectsWith('invalid_argument', /^audio longer than 1 s$/));
});

test('other formats keep their sample rate and are mixed to mono', { skip: !hasFfmpeg && 'ffmpeg is not installed' }, async () => {
  const flac = ffmpegFile('tone.flac', ['-f', 'lavfi', '-i', 'sine=frequency=1000:duration=1', '-ar', '22050', '-ac', '2', '-c:a', 'flac']);
  const audio = await decodeAudio(flac, OPTS);
  assert.deepEqual([audio.sampleRate, audio.channels, audio.samples.length], [22050, 1, 22050]);
  assert.ok(fitSine(audio.samples, 1000, 22050, 1000, 21000).snrDb > 50);
});

test('compressed WAV (IMA ADPCM) is handed to ffmpeg', { skip: !hasFfmpeg && 'ffmpeg is not installed' }, async () => {
  const wav = ffmpegFile('adpcm.wav', ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=1', '-ar', '8000', '-ac', '1', '-c:a', 'adpcm_ima_wav']);
  assert.equal(wav.readUInt16LE(20), 0x11);
  const audio = await decodeAudio(wav, OPTS);
  assert.equal(audio.sampleRate, 8000);
  assert.ok(Math.abs(audio.samples.length - 8000) < 600, `${audio.samples.length} samples`);
  assert.ok(fitSine(audio.samples, 440, 8000, 500, 7500).snrDb > 15);
});

test('garbage is a client error carrying ffmpeg\'s reason without paths', { skip: !hasFfmpeg && 'ffmpeg is not installed' }, async () => {
  for (const garbage of [Buffer.from('this is not audio at all, just some text\n'.repeat(50)), Buffer.from(noise(4000, 30000, 42).buffer)]) {
    await assert.rejects(decodeAudio(garbage, OPTS), (err: unknown) => {
      rejectsWith('invalid_argument', /^could not decode audio: \S/)(err);
      const message = (err as Error).message;
      assert.doesNotMatch(message, /pipe:|\/|0x[0-9a-f]{6}/, message);
      assert.ok(message.length < 260);
      return true;
    });
  }
});

test('a decoder that hangs is killed at the timeout', { skip: process.platform === 'win32' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'decode-audio-'));
  try {
    const fake = join(dir, 'ffmpeg');
    const pidFile = join(dir, 'pid');
    writeFileSync(fake, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 30\n`);
    chmodSync(fake, 0o755);
    const started = Date.now();
    await assert.rejects(
      decodeAudio(Buffer.from('ID3 not really'), { maxSeconds: 5, timeoutMs: 200, ffmpegPath: fake }),
      rejectsWith('invalid_argument', /^could not decode audio in 200 ms$/),
    );
    assert.ok(Date.now() - started < 2000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    const alive = (): boolean => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(alive(), false, 'the decoder process is still running');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
