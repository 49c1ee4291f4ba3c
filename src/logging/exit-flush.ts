import { writeSync } from 'node:fs';

/** What of sonic-boom (4.x) the exit flush reads: the lines waiting, in order. */
interface SonicBoomQueue {
  fd: number;
  destroyed: boolean;
  _writing: boolean;
  _writingBuf: string | Buffer;
  _bufs: (string | Buffer)[];
  _len: number;
  flushSync(): void;
}

/** How long the exit waits for a reader that is slow (EAGAIN), not gone. */
const SLOW_READER_MS = 2000;
const nap = new Int32Array(new SharedArrayBuffer(4));

/**
 * sonic-boom's flushSync, which pino runs when the process exits, retries a failed write
 * forever unless it failed with EAGAIN or EBUSY: when stdout's reader is gone (EPIPE: a log
 * shipper that died, a supervisor's parent that exited), the process hangs in its exit handler
 * and holds its ports (seen: a shard alive an hour after its supervisor was killed). This one
 * writes what waits, waits out a slow reader for at most two seconds, and drops the rest.
 */
export function boundExitFlush(stream: object): void {
  const s = stream as SonicBoomQueue;
  s.flushSync = () => {
    if (s.destroyed || s.fd < 0) return;
    if (!s._writing && s._writingBuf.length > 0) {
      s._bufs.unshift(s._writingBuf);
      s._writingBuf = '';
    }
    const deadline = performance.now() + SLOW_READER_MS;
    while (s._bufs.length > 0) {
      const head = s._bufs[0]!;
      const buf = typeof head === 'string' ? Buffer.from(head, 'utf8') : head;
      try {
        const n = writeSync(s.fd, buf);
        if (n < buf.length) s._bufs[0] = buf.subarray(n);
        else s._bufs.shift();
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'EAGAIN' || code === 'EBUSY') && performance.now() < deadline) {
          Atomics.wait(nap, 0, 0, 10);
          continue;
        }
        // Nobody will read these lines.
        s._bufs.length = 0;
      }
    }
    s._len = 0;
  };
}
