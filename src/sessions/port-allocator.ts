/**
 * Even RTP ports (the odd neighbour stays free for RTCP) handed out FIFO, so a released
 * port is reused as late as possible; a released port also rests in quarantine so stray
 * packets of the old call never reach a new one.
 */
export class PortAllocator {
  readonly #free: number[] = [];
  #head = 0;
  readonly #quarantine: { port: number; until: number }[] = [];
  readonly #inUse = new Set<number>();
  readonly #quarantineMs: number;
  readonly #now: () => number;

  constructor(opts: { min: number; max: number; quarantineSeconds: number; now?: () => number }) {
    const first = opts.min % 2 === 0 ? opts.min : opts.min + 1;
    for (let p = first; p + 1 <= opts.max; p += 2) this.#free.push(p);
    this.#quarantineMs = opts.quarantineSeconds * 1000;
    this.#now = opts.now ?? Date.now;
  }

  get capacity(): number {
    return this.#free.length - this.#head + this.#quarantine.length + this.#inUse.size;
  }

  get inUse(): number {
    return this.#inUse.size;
  }

  get inQuarantine(): number {
    this.#expire();
    return this.#quarantine.length;
  }

  get available(): number {
    this.#expire();
    return this.#free.length - this.#head;
  }

  /** The next free port, or null when every port is in use or resting. */
  take(): number | null {
    this.#expire();
    if (this.#head >= this.#free.length) return null;
    const port = this.#free[this.#head++]!;
    if (this.#head > 1024 && this.#head * 2 > this.#free.length) {
      this.#free.splice(0, this.#head);
      this.#head = 0;
    }
    this.#inUse.add(port);
    return port;
  }

  /** Takes one particular free port (a call resumed on the port it had); false when it is not free. */
  claim(port: number): boolean {
    this.#expire();
    const i = this.#free.indexOf(port, this.#head);
    if (i < 0) return false;
    this.#free.splice(i, 1);
    this.#inUse.add(port);
    return true;
  }

  /** Returns a port after its call ended; it becomes free when its quarantine is over. */
  release(port: number): void {
    if (!this.#inUse.delete(port)) return;
    if (this.#quarantineMs <= 0) this.#free.push(port);
    else this.#quarantine.push({ port, until: this.#now() + this.#quarantineMs });
  }

  #expire(): void {
    if (this.#quarantine.length === 0) return;
    const now = this.#now();
    let n = 0;
    while (n < this.#quarantine.length && this.#quarantine[n]!.until <= now) n++;
    if (n === 0) return;
    for (const q of this.#quarantine.splice(0, n)) this.#free.push(q.port);
  }
}
