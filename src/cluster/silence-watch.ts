/**
 * Tells once when a process that should speak regularly has gone quiet for `timeoutMs` while
 * armed. A check that itself ran late (this process was the one stopped: a long collection, a
 * busy loop) restarts the count instead: messages waiting to be read are not silence.
 */
export class SilenceWatch {
  readonly #timeoutMs: number;
  readonly #onSilent: (silentMs: number) => void;
  readonly #now: () => number;
  readonly #everyMs: number;
  #last = 0;
  #checked = 0;
  #timer: NodeJS.Timeout | undefined;

  readonly #manual: boolean;
  #armed = false;

  /** `manual`: no timer, the owner (a test) calls check(). */
  constructor(opts: { timeoutMs: number; onSilent: (silentMs: number) => void; now?: () => number; manual?: boolean }) {
    this.#timeoutMs = opts.timeoutMs;
    this.#onSilent = opts.onSilent;
    this.#now = opts.now ?? (() => performance.now());
    this.#manual = opts.manual ?? false;
    this.#everyMs = Math.max(10, Math.min(500, opts.timeoutMs / 4));
  }

  /** Starts counting from now (0 ms timeout: never). */
  arm(): void {
    this.disarm();
    if (this.#timeoutMs <= 0) return;
    this.#last = this.#checked = this.#now();
    this.#armed = true;
    if (this.#manual) return;
    this.#timer = setInterval(() => this.check(), this.#everyMs);
    this.#timer.unref();
  }

  disarm(): void {
    this.#armed = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  beat(): void {
    this.#last = this.#now();
  }

  /** Run by the timer, or by the owner of a manual watch. */
  check(): void {
    if (!this.#armed) return;
    const now = this.#now();
    const late = now - this.#checked > 2 * this.#everyMs;
    this.#checked = now;
    if (late) {
      this.#last = now;
      return;
    }
    const silent = now - this.#last;
    if (silent <= this.#timeoutMs) return;
    this.disarm();
    this.#onSilent(silent);
  }
}
