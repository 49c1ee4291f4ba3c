import { spawn } from 'node:child_process';

/**
 * WAV spool -> MP3, in an ffmpeg process: the encoder's CPU stays off the event loop that
 * paces every call's media.
 */
export function wavToMp3(wav: string, mp3: string, opts: { sampleRate: number; channels: number; timeoutMs: number }): Promise<void> {
  const kbps = Math.min(320, Math.max(16, Math.round((opts.sampleRate / 8000) * 16 * opts.channels)));
  return new Promise((resolve, reject) => {
    const p = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', '-i', wav, '-c:a', 'libmp3lame', '-b:a', `${kbps}k`, mp3], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs);
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
