import type { types as ms } from 'mediasoup';
import type { Logger } from '../logging/logger.ts';
import type { TimelineFrame } from '../media-path/inbound-timeline.ts';
import type { CallSession, CallTap, CloseReason } from '../sessions/call-session.ts';
import { parseRtp } from '../rtp-bridge/rtp-packet.ts';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { OpusPlayout } from './opus-playout.ts';
import type { AudioSource } from '../media-path/mixer.ts';
import { OpusSendLeg } from './opus-send-leg.ts';

const FRAME = 160;
/** Caller frames waiting for the next outbound tick; more means the clock fell behind. */
const MAX_CALLER_FRAMES = 3;

export interface TranscodeSettings {
  complexity: number;
  bitrate: number;
  jitterMs: number;
}

interface Listener {
  consumer: ms.Consumer;
  playout: OpusPlayout;
}

/** Every browser's voice, as one source of the call's mix. */
class BrowserVoices implements AudioSource {
  readonly playouts = new Set<OpusPlayout>();

  mixInto(acc: Int32Array): boolean {
    let any = false;
    for (const p of this.playouts) if (p.mixInto(acc)) any = true;
    return any;
  }
}

/**
 * A phone call inside a room. The phone's side becomes one Opus producer carrying what the
 * phone's party says plus what the service plays to it (prompts, injected speech); every
 * browser's audio is consumed, decoded and mixed into what the phone hears. Browsers never
 * get their own voice back: the call mixes the browsers last, and the producer carries the
 * sum of everything else, formed before any clipping (never the clipped whole minus them).
 */
export class CallLeg extends TypedEmitter<{ close: [reason: string] }> implements CallTap {
  readonly session: CallSession;
  readonly send: OpusSendLeg;
  readonly #transport: ms.DirectTransport;
  readonly #settings: TranscodeSettings;
  readonly #log: Logger;
  readonly #listeners = new Map<string, Listener>();
  readonly #caller: Int16Array[] = [];
  readonly #browsers = new BrowserVoices();
  readonly #mix = new Int16Array(FRAME);
  #closed = false;

  static async create(opts: { router: ms.Router; session: CallSession; peerId: string; settings: TranscodeSettings; log: Logger }): Promise<CallLeg> {
    const { transport, send } = await OpusSendLeg.open(opts.router, { complexity: opts.settings.complexity, bitrate: opts.settings.bitrate, appData: { peerId: opts.peerId } });
    return new CallLeg(opts.session, transport, send, opts.settings, opts.log);
  }

  private constructor(session: CallSession, transport: ms.DirectTransport, send: OpusSendLeg, settings: TranscodeSettings, log: Logger) {
    super(log);
    this.session = session;
    this.send = send;
    this.#transport = transport;
    this.#settings = settings;
    this.#log = log;
    transport.on('routerclose', () => this.close('the room closed'));
    session.addTap(this);
    session.addSource(this.#browsers);
    session.setAside(this.#browsers);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Starts hearing a browser's producer on the phone. */
  async listen(producer: ms.Producer, rtpCapabilities: ms.RtpCapabilities): Promise<void> {
    if (this.#closed || producer.kind !== 'audio' || this.#listeners.has(producer.id)) return;
    const consumer = await this.#transport.consume({ producerId: producer.id, rtpCapabilities });
    if (this.#closed) {
      consumer.close();
      return;
    }
    const playout = new OpusPlayout({ delayMs: this.#settings.jitterMs });
    consumer.on('rtp', (packet: Buffer) => {
      const h = parseRtp(packet);
      if (h) playout.push(h.ssrc, h.sequenceNumber, packet.subarray(h.payloadOffset, h.payloadOffset + h.payloadLength));
    });
    const drop = (): void => this.#unlisten(producer.id);
    consumer.on('producerclose', drop);
    consumer.on('transportclose', drop);
    this.#listeners.set(producer.id, { consumer, playout });
    this.#browsers.playouts.add(playout);
  }

  inbound(frame: TimelineFrame): void {
    if (this.#caller.length >= MAX_CALLER_FRAMES) this.#caller.shift();
    this.#caller.push(frame.samples);
  }

  outbound(frame: Int16Array | null): void {
    const caller = this.#caller.shift();
    // What the call heard without the browsers: the service's own audio (prompts, speech).
    const service = frame ? this.session.heardWithoutAside : null;
    const mix = this.#mix;
    for (let i = 0; i < FRAME; i++) {
      const v = (service ? service[i]! : 0) + (caller ? caller[i]! : 0);
      mix[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
    }
    this.send.send(mix);
  }

  callClosed(_reason: CloseReason): void {
    this.close('the call ended');
  }

  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.session.removeTap(this);
    this.session.setAside(null);
    this.session.removeSource(this.#browsers);
    for (const id of [...this.#listeners.keys()]) this.#unlisten(id);
    this.#transport.close();
    this.#log.info({ event: 'CALL_LEG_CLOSED', attributes: { reason, 'rtp.port': this.session.port } }, 'phone left the room');
    this.safeEmit('close', reason);
    this.removeAllListeners();
  }

  #unlisten(producerId: string): void {
    const l = this.#listeners.get(producerId);
    if (!l) return;
    this.#listeners.delete(producerId);
    this.#browsers.playouts.delete(l.playout);
    this.#log.info({ event: 'CALL_LEG_LISTENER_CLOSED', attributes: { 'webrtc.producer': producerId, ...prefixed('playout', l.playout.stats) } }, 'the phone stopped hearing a participant');
    l.consumer.close();
  }
}

function prefixed(prefix: string, o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [`${prefix}.${k}`, v]));
}
