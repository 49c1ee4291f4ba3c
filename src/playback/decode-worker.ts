// Runs in a worker thread: prompt decoding and resampling are CPU work that would otherwise
// stall the event loop that paces every call's 20 ms packets.
import { flushCompileCache } from 'node:module';
import { parentPort } from 'node:worker_threads';
import { decodeAudio } from '../codecs/decode-audio.ts';
import { resample } from '../codecs/resampler.ts';
import { toMono, type PcmAudio } from '../codecs/wav.ts';
import { MediaError, invalidArgument } from '../errors/media-error.ts';
import type { DecodeJob, DecodeReply } from './decode-pool.ts';

function toCallRate(audio: PcmAudio, rate: number, maxSeconds: number): Int16Array {
  const mono = audio.channels === 1 ? audio.samples : toMono(audio);
  if (mono.length / audio.sampleRate > maxSeconds) throw invalidArgument(`prompt longer than ${maxSeconds} s`);
  if (mono.length === 0) throw invalidArgument('prompt contains no audio');
  return audio.sampleRate === rate ? mono : resample(mono, audio.sampleRate, rate);
}

async function run(job: DecodeJob): Promise<Int16Array> {
  const bytes = new Uint8Array(job.bytes);
  if (job.rawPcmRate) {
    if (bytes.length % 2 !== 0) throw invalidArgument('data:audio/pcm carries an odd number of bytes (16-bit samples expected)');
    const view = new DataView(job.bytes);
    const samples = new Int16Array(bytes.length / 2);
    for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(i * 2, true);
    return toCallRate({ sampleRate: job.rawPcmRate, channels: 1, samples }, job.rate, job.maxSeconds);
  }
  return toCallRate(await decodeAudio(bytes, { maxSeconds: job.maxSeconds, timeoutMs: job.timeoutMs }), job.rate, job.maxSeconds);
}

parentPort!.on('message', (job: DecodeJob) => {
  run(job).then(
    (pcm) => {
      const reply: DecodeReply = { id: job.id, pcm };
      parentPort!.postMessage(reply, [pcm.buffer as ArrayBuffer]);
    },
    (err: unknown) => {
      const e = err instanceof MediaError ? { code: err.code, message: err.message } : { code: 'internal' as const, message: String((err as Error)?.message ?? err) };
      const reply: DecodeReply = { id: job.id, error: e };
      parentPort!.postMessage(reply);
    },
  );
});

// The thread is terminated, never exits: its compiled modules are written to the compile cache
// now, so the next thread finds them and Node's TypeScript stripper is not loaded again.
flushCompileCache();
