import type { types as ms } from 'mediasoup';
import type { Clocked, MediaClock } from '../media-path/clock.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { OpusSendLeg } from './opus-send-leg.ts';

const FRAME = 160;

/**
 * A prompt played into a room as if someone spoke it: the same Opus path a phone takes,
 * so a developer hears (and sees the level of) audio that crossed the transcoder.
 */
export class TestLeg extends TypedEmitter<{ close: [reason: string] }> implements Clocked {
  readonly send: OpusSendLeg;
  readonly #transport: ms.DirectTransport;
  readonly #clock: MediaClock;
  readonly #pcm: Int16Array;
  readonly #loop: boolean;
  readonly #frame = new Int16Array(FRAME);
  #pos = 0;
  #closed = false;

  static async create(opts: { router: ms.Router; clock: MediaClock; pcm: Int16Array; loop: boolean; peerId: string; complexity: number; bitrate: number }): Promise<TestLeg> {
    const { transport, send } = await OpusSendLeg.open(opts.router, { complexity: opts.complexity, bitrate: opts.bitrate, appData: { peerId: opts.peerId } });
    return new TestLeg(transport, send, opts.clock, opts.pcm, opts.loop);
  }

  private constructor(transport: ms.DirectTransport, send: OpusSendLeg, clock: MediaClock, pcm: Int16Array, loop: boolean) {
    super();
    this.#transport = transport;
    this.send = send;
    this.#clock = clock;
    this.#pcm = pcm;
    this.#loop = loop;
    transport.on('routerclose', () => this.close('the room closed'));
    clock.add(this);
  }

  tick(): void {
    if (this.#closed) return;
    if (this.#pos >= this.#pcm.length) {
      if (!this.#loop || this.#pcm.length === 0) {
        this.close('the prompt ended');
        return;
      }
      this.#pos = 0;
    }
    const n = Math.min(FRAME, this.#pcm.length - this.#pos);
    this.#frame.fill(0);
    this.#frame.set(this.#pcm.subarray(this.#pos, this.#pos + n));
    this.#pos += n;
    this.send.send(this.#frame);
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clock.remove(this);
    this.#transport.close();
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }
}
