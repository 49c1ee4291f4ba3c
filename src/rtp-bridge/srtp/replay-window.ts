/**
 * A 64-packet replay window (RFC 3711 3.3.2) over a packet index: SRTP's ROC || SEQ, SRTCP's
 * 31-bit index. The bits are two uint32 halves rather than a bigint, which would allocate on
 * every shift: bit k set means index (highest - k) has been received.
 */
export class ReplayWindow {
  highest: number;
  lo = 1;
  hi = 0;

  constructor(highest: number) {
    this.highest = highest;
  }

  /** A window that refuses `highest` and everything before it (a stream resumed elsewhere). */
  static full(highest: number): ReplayWindow {
    const w = new ReplayWindow(highest);
    w.lo = 0xffffffff;
    w.hi = 0xffffffff;
    return w;
  }

  /** Whether the index is too old for the window or was already received. */
  seen(index: number): boolean {
    const k = this.highest - index;
    if (k < 0) return false;
    if (k >= 64) return true;
    return ((k < 32 ? this.lo >>> k : this.hi >>> (k - 32)) & 1) === 1;
  }

  /** Records an authenticated index; true when it is the new highest. */
  accept(index: number): boolean {
    const d = index - this.highest;
    if (d > 0) {
      if (d >= 64) {
        this.hi = 0;
        this.lo = 1;
      } else if (d >= 32) {
        this.hi = (this.lo << (d - 32)) >>> 0;
        this.lo = 1;
      } else {
        this.hi = ((this.hi << d) | (this.lo >>> (32 - d))) >>> 0;
        this.lo = ((this.lo << d) | 1) >>> 0;
      }
      this.highest = index;
      return true;
    }
    if (-d < 32) this.lo = (this.lo | (1 << -d)) >>> 0;
    else this.hi = (this.hi | (1 << (-d - 32))) >>> 0;
    return false;
  }
}
