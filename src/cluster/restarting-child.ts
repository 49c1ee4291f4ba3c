import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logging/logger.ts';
import { SilenceWatch } from './silence-watch.ts';

const ENTRY = fileURLToPath(new URL('../main.js', import.meta.url));
/** The first restart is at once: whatever the process carried waits for it. */
const FIRST_RESTART_MS = 0;
const LONGEST_RESTART_MS = 10_000;
/** A process that stayed up this long restarts at once after its next crash; one dying sooner is in a crash loop and waits longer each time. */
const STABLE_MS = 2_000;

export interface RestartingChildHooks {
  /** A message of the process now running (any message also proves it is not stuck). */
  message(child: ChildProcess, m: unknown): void;
  /** It exited; `restartInMs` is when it starts again, null when it was told to stop. */
  exited(code: number | null, signal: NodeJS.Signals | null, restartInMs: number | null): void;
  /** It said nothing for the hang timeout while watched: it is killed right after this. */
  hung(silentMs: number): void;
}

/**
 * One child process of the instance (a media shard, a front door), forked from the same
 * entry with its role in its environment, started again whenever it dies (at once, or with a
 * growing pause in a crash loop), and killed when it stops talking while watched.
 */
export class RestartingChild {
  restarts = 0;
  #child: ChildProcess | undefined;
  #stopping = false;
  #startedAt = 0;
  #delay = FIRST_RESTART_MS;
  #restartTimer: NodeJS.Timeout | undefined;
  #exited: Promise<void> = Promise.resolve();
  readonly #env: Record<string, string>;
  readonly #hooks: RestartingChildHooks;
  readonly #log: Logger;
  readonly #label: { event: string; attributes: Record<string, unknown> };
  readonly #watch: SilenceWatch;

  constructor(opts: { env: Record<string, string>; logger: Logger; hangTimeoutMs: number; label: { event: string; attributes: Record<string, unknown> }; hooks: RestartingChildHooks }) {
    this.#env = opts.env;
    this.#hooks = opts.hooks;
    this.#log = opts.logger;
    this.#label = opts.label;
    this.#watch = new SilenceWatch({
      timeoutMs: opts.hangTimeoutMs,
      onSilent: (silentMs) => {
        this.#hooks.hung(silentMs);
        this.#child?.kill('SIGKILL');
      },
    });
  }

  /** The process now running, if any. */
  get child(): ChildProcess | undefined {
    return this.#child;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Told to stop: it is not started again, and takes nothing new. */
  get stopping(): boolean {
    return this.#stopping;
  }

  start(): void {
    this.#startedAt = Date.now();
    // Its own process group: a terminal's Ctrl-C reaches the supervisor, which stops the children.
    const child = fork(ENTRY, process.argv.slice(2), { env: this.#env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced', detached: true });
    this.#child = child;
    child.on('message', (m) => {
      this.#watch.beat();
      this.#hooks.message(child, m);
    });
    // A send to a child that just died (its channel not yet seen closed) fails here, not in a throw.
    child.on('error', (error) => this.#log.warn({ event: `${this.#label.event}_CHANNEL_FAILED`, error, attributes: this.#label.attributes }, 'a message to a child process could not be sent'));
    this.#exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        this.#watch.disarm();
        this.#child = undefined;
        resolve();
        if (this.#stopping) {
          this.#hooks.exited(code, signal, null);
          return;
        }
        this.restarts++;
        if (Date.now() - this.#startedAt > STABLE_MS) this.#delay = FIRST_RESTART_MS;
        const delay = this.#delay;
        this.#hooks.exited(code, signal, delay);
        this.#restartTimer = setTimeout(() => this.start(), delay);
        this.#delay = Math.min(LONGEST_RESTART_MS, Math.max(250, this.#delay * 2));
      });
    });
  }

  /** It is ready and reports regularly: from now on, silence means it is stuck. */
  watch(): void {
    if (!this.#stopping) this.#watch.arm();
  }

  send(m: unknown): void {
    if (this.#child?.connected) this.#child.send(m as object);
  }

  /** Passes the signal on and stops restarting it (a draining child goes quiet: it is not watched). */
  signal(signal: NodeJS.Signals): void {
    this.#stopping = true;
    this.#watch.disarm();
    clearTimeout(this.#restartTimer);
    this.#child?.kill(signal);
  }

  /** Resolves once the process has exited (at once when it is not running). */
  whenExited(): Promise<void> {
    return this.#exited;
  }
}
