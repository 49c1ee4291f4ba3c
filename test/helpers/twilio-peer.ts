// A backend for the `twilio` protocol, written only from Twilio's published schema
// (https://www.twilio.com/docs/voice/media-streams/websocket-messages). The service under test
// plays Twilio's part and connects here; every departure from that schema is recorded in
// `TwilioConnection.problems`. Section names in comments refer to that page.

import { createServer, STATUS_CODES, type IncomingMessage, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

// ---------------------------------------------------------------------------------------------
// G.711 µ-law (ITU-T G.711, 16-bit linear scaling with the usual bias of 0x84 and clip at 32635).

const MULAW_BIAS = 0x84;
const MULAW_CLIP = 32635;

export function linearToMuLaw(sample: number): number {
  let s = Math.max(-32768, Math.min(32767, Math.round(sample)));
  const sign = s < 0 ? 0x80 : 0;
  if (sign) s = -s;
  if (s > MULAW_CLIP) s = MULAW_CLIP;
  s += MULAW_BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  // G.711 transmits the code with all bits inverted.
  return ~(sign | (exponent << 4) | mantissa) & 0xff;
}

export function muLawToLinear(code: number): number {
  const u = ~code & 0xff;
  const exponent = (u >> 4) & 0x07;
  const magnitude = ((((u & 0x0f) << 3) + MULAW_BIAS) << exponent) - MULAW_BIAS;
  return u & 0x80 ? -magnitude : magnitude;
}

export function muLawEncode(pcm: Int16Array): Buffer {
  const out = Buffer.alloc(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = linearToMuLaw(pcm[i]!);
  return out;
}

export function muLawDecode(bytes: Uint8Array): Int16Array {
  const out = new Int16Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = muLawToLinear(bytes[i]!);
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface TwilioPeerOptions {
  /** Only upgrades to this pathname are accepted (others get 404). Unset: any path. */
  path?: string;
  /** answer with this HTTP status instead of accepting */
  rejectStatus?: number;
}

export interface StartInfo {
  streamSid: string;
  callSid: string;
  accountSid: string;
  tracks: string[];
  customParameters: Record<string, string>;
  mediaFormat: { encoding: string; sampleRate: number; channels: number };
}

export interface UpgradeRecord {
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

type Msg = Record<string, unknown>;

const isObject = (v: unknown): v is Msg => typeof v === 'object' && v !== null && !Array.isArray(v);
const DECIMAL = /^\d+$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (s: string): boolean => s.length % 4 === 0 && BASE64.test(s);
const show = (v: unknown): string => (v === undefined ? 'missing' : JSON.stringify(v));

function rawToBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * A count that goes up by one from 1. After a wrong value, both the old count and the wrong one
 * are accepted as the base for the next value, so a jump and a single bad value each give one
 * problem instead of a cascade.
 */
class Counter {
  expected = 1;
  #alt: number | undefined;
  take(v: number): boolean {
    const ok = v === this.expected || v === this.#alt;
    this.#alt = ok ? undefined : this.expected + 1;
    this.expected = v + 1;
    return ok;
  }
  skip(): void {
    this.#alt = undefined;
    this.expected++;
  }
}

interface Waiter {
  pred: (msg: Msg) => boolean;
  resolve: (msg: Msg) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** One WebSocket accepted by the peer: one Media Stream as seen by a backend. */
export class TwilioConnection {
  readonly ws: WebSocket;
  /** The upgrade request that opened this connection. */
  readonly request: UpgradeRecord;
  readonly messages: { at: number; msg: Msg }[] = [];
  /** Every deviation from the schema seen so far, human readable (empty = faithful). */
  readonly problems: string[] = [];
  /** mark messages received back, with arrival time (performance.now()). */
  readonly marks: { name: string; at: number }[] = [];
  readonly dtmf: string[] = [];
  /** Resolves with the close code and reason when the socket closes. */
  readonly closed: Promise<{ code: number; reason: string }>;
  /** The parsed start message, once it has arrived. */
  startInfo: StartInfo | undefined;
  /** The stop message, once it has arrived. */
  stopMessage: Msg | undefined;
  /** True when this side (the test) started the close. */
  closedLocally = false;
  isClosed = false;

  #seq = new Counter();
  #streamSid: string | undefined;
  #chunk = new Map<string, Counter>();
  #timestamp = new Map<string, number>();
  #media = new Map<string, { chunk: number; bytes: Buffer }[]>();
  /** Names of marks sent and not yet echoed, oldest first. */
  #pendingMarks: string[] = [];
  #waiters = new Set<Waiter>();

  constructor(ws: WebSocket, request: UpgradeRecord) {
    this.ws = ws;
    this.request = request;
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.isClosed = true;
        for (const w of this.#waiters) {
          clearTimeout(w.timer);
          w.reject(new Error(`socket closed (${code}) before an awaited message arrived`));
        }
        this.#waiters.clear();
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
    ws.on('error', (err) => this.#problem(`WebSocket error: ${err.message}`));
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary));
  }

  #problem(text: string): void {
    this.problems.push(text);
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    const at = performance.now();
    const buf = rawToBuffer(data);
    // Every message on the page is a JSON object; nothing there is sent as a binary frame.
    if (isBinary) {
      this.#problem(`binary frame of ${buf.length} bytes (Twilio sends JSON text messages only)`);
      return;
    }
    let msg: unknown;
    try {
      msg = JSON.parse(buf.toString('utf8'));
    } catch (err) {
      this.#problem(`JSON parse error: ${(err as Error).message} in ${JSON.stringify(buf.toString('utf8').slice(0, 80))}`);
      return;
    }
    if (!isObject(msg)) {
      this.#problem(`message is not a JSON object: ${JSON.stringify(msg).slice(0, 80)}`);
      return;
    }
    this.messages.push({ at, msg });
    this.#validate(msg, this.messages.length);
    for (const w of this.#waiters) {
      if (w.pred(msg)) {
        clearTimeout(w.timer);
        this.#waiters.delete(w);
        w.resolve(msg);
      }
    }
  }

  #validate(msg: Msg, n: number): void {
    const ev = msg.event;
    const where = `#${n} ${typeof ev === 'string' ? ev : '?'}`;
    const p = (text: string): void => this.#problem(`${where}: ${text}`);

    if (this.stopMessage) p('message after stop');
    if (typeof ev !== 'string') {
      p(`event must be a string, got ${show(ev)}`);
      return;
    }
    if (n === 1 && ev !== 'connected') p('first message must be connected');

    // "Connected message": only event, protocol and version.
    if (ev === 'connected') {
      if (n !== 1) p('connected must be the first message and sent once');
      if (typeof msg.protocol !== 'string') p(`protocol must be a string, got ${show(msg.protocol)}`);
      if (typeof msg.version !== 'string' || !/^\d+\.\d+\.\d+/.test(msg.version)) {
        p(`version must be a semantic version string, got ${show(msg.version)}`);
      }
      if ('sequenceNumber' in msg) p('connected carries a sequenceNumber (the schema gives it none)');
      if ('streamSid' in msg) p('connected carries a streamSid (the schema gives it none)');
      return;
    }

    if (n === 2 && ev !== 'start') p('second message must be start');
    if (ev !== 'start' && !this.startInfo) p('arrives before start');

    // sequenceNumber: "The first message has a value of 1 and then is incremented for each
    // subsequent message"; every example shows it as a string.
    const sn = msg.sequenceNumber;
    if (typeof sn === 'string' && DECIMAL.test(sn)) {
      const expected = this.#seq.expected;
      if (!this.#seq.take(Number(sn))) p(`sequenceNumber "${sn}", expected "${expected}"`);
    } else {
      p(`sequenceNumber must be a decimal string, got ${show(sn)}`);
      this.#seq.skip();
    }

    // streamSid is a top-level property of every message after connected.
    const sid = msg.streamSid;
    if (typeof sid !== 'string') p(`streamSid must be a string, got ${show(sid)}`);

    switch (ev) {
      case 'start':
        this.#onStart(msg, p);
        break;
      case 'media':
        this.#onMedia(msg, p);
        break;
      case 'dtmf':
        this.#onDtmf(msg, p);
        break;
      case 'mark':
        this.#onMark(msg, p);
        break;
      case 'stop':
        this.#onStop(msg, p);
        break;
      default:
        p('unknown event (the schema has connected, start, media, dtmf, stop, mark)');
    }
    if (ev !== 'start' && typeof sid === 'string' && this.#streamSid !== undefined && sid !== this.#streamSid) {
      p(`streamSid ${show(sid)} differs from start.streamSid ${show(this.#streamSid)}`);
    }
  }

  // "Start message"
  #onStart(msg: Msg, p: (t: string) => void): void {
    if (this.startInfo) p('start sent more than once ("It is only sent once")');
    const s = isObject(msg.start) ? msg.start : {};
    if (!isObject(msg.start)) p(`start must be an object, got ${show(msg.start)}`);
    const str = (key: string): string => {
      const v = s[key];
      if (typeof v !== 'string' || v === '') p(`start.${key} must be a non-empty string, got ${show(v)}`);
      return typeof v === 'string' ? v : '';
    };
    const streamSid = str('streamSid');
    const accountSid = str('accountSid');
    const callSid = str('callSid');

    const tracks: string[] = [];
    if (Array.isArray(s.tracks) && s.tracks.length > 0) {
      for (const t of s.tracks) {
        if (t === 'inbound' || t === 'outbound') tracks.push(t);
        else p(`start.tracks has ${show(t)} (values are inbound, outbound)`);
      }
    } else {
      p(`start.tracks must be a non-empty array of strings, got ${show(s.tracks)}`);
    }

    const customParameters: Record<string, string> = {};
    if (isObject(s.customParameters)) {
      for (const [k, v] of Object.entries(s.customParameters)) {
        // <Parameter name value> pairs: the values are strings.
        if (typeof v === 'string') customParameters[k] = v;
        else p(`start.customParameters.${k} must be a string, got ${show(v)}`);
      }
    } else {
      p(`start.customParameters must be an object, got ${show(s.customParameters)}`);
    }

    const mf = isObject(s.mediaFormat) ? s.mediaFormat : {};
    if (!isObject(s.mediaFormat)) p(`start.mediaFormat must be an object, got ${show(s.mediaFormat)}`);
    // "Value is always audio/x-mulaw" / "always 8000" / "always 1", numbers in the example.
    if (mf.encoding !== 'audio/x-mulaw') p(`start.mediaFormat.encoding must be "audio/x-mulaw", got ${show(mf.encoding)}`);
    if (mf.sampleRate !== 8000) p(`start.mediaFormat.sampleRate must be the number 8000, got ${show(mf.sampleRate)}`);
    if (mf.channels !== 1) p(`start.mediaFormat.channels must be the number 1, got ${show(mf.channels)}`);

    if (msg.streamSid !== streamSid) p(`streamSid ${show(msg.streamSid)} differs from start.streamSid ${show(streamSid)}`);

    if (!this.startInfo) {
      this.#streamSid = streamSid || (typeof msg.streamSid === 'string' ? msg.streamSid : undefined);
      this.startInfo = {
        streamSid: this.#streamSid ?? '',
        accountSid,
        callSid,
        tracks,
        customParameters,
        mediaFormat: {
          encoding: typeof mf.encoding === 'string' ? mf.encoding : '',
          sampleRate: typeof mf.sampleRate === 'number' ? mf.sampleRate : NaN,
          channels: typeof mf.channels === 'number' ? mf.channels : NaN,
        },
      };
    }
  }

  // "Media message"
  #onMedia(msg: Msg, p: (t: string) => void): void {
    const m = msg.media;
    if (!isObject(m)) {
      p(`media must be an object, got ${show(m)}`);
      return;
    }
    const track = m.track;
    if (typeof track !== 'string') {
      p(`media.track must be a string, got ${show(track)}`);
      return;
    }
    if (this.startInfo && !this.startInfo.tracks.includes(track)) {
      p(`media.track "${track}" not in start.tracks ${JSON.stringify(this.startInfo.tracks)}`);
    }

    // "The first message will begin with 1 and increment with each subsequent message." The page
    // does not say whether the count is per track (its two examples fit either reading); counted
    // per track here.
    let counter = this.#chunk.get(track);
    if (!counter) this.#chunk.set(track, (counter = new Counter()));
    let chunk: number;
    if (typeof m.chunk === 'string' && DECIMAL.test(m.chunk)) {
      chunk = Number(m.chunk);
      const expected = counter.expected;
      if (!counter.take(chunk)) p(`media.chunk "${m.chunk}" on ${track}, expected "${expected}"`);
    } else {
      p(`media.chunk must be a decimal string, got ${show(m.chunk)}`);
      chunk = counter.expected;
      counter.skip();
    }

    // "Presentation Timestamp in Milliseconds from the start of the stream."
    if (typeof m.timestamp === 'string' && DECIMAL.test(m.timestamp)) {
      const ts = Number(m.timestamp);
      const last = this.#timestamp.get(track);
      if (last !== undefined && ts < last) p(`media.timestamp "${m.timestamp}" on ${track} goes back from "${last}"`);
      this.#timestamp.set(track, ts);
    } else {
      p(`media.timestamp must be a string of a non-negative integer, got ${show(m.timestamp)}`);
    }

    // "Raw audio encoded in base64"
    if (typeof m.payload !== 'string' || !isBase64(m.payload)) {
      p(`media.payload must be a base64 string, got ${typeof m.payload === 'string' ? `${JSON.stringify(m.payload.slice(0, 40))} (not base64)` : show(m.payload)}`);
      return;
    }
    let list = this.#media.get(track);
    if (!list) this.#media.set(track, (list = []));
    list.push({ chunk, bytes: Buffer.from(m.payload, 'base64') });
  }

  // "DTMF message"
  #onDtmf(msg: Msg, p: (t: string) => void): void {
    const d = msg.dtmf;
    if (!isObject(d)) {
      p(`dtmf must be an object, got ${show(d)}`);
      return;
    }
    if (d.track !== 'inbound_track') p(`dtmf.track must be "inbound_track" ("Value is always inbound_track"), got ${show(d.track)}`);
    // "The number-key tone detected": one key of a DTMF keypad.
    if (typeof d.digit !== 'string' || !/^[0-9*#A-D]$/.test(d.digit)) p(`dtmf.digit must be one key (0-9 * # A-D), got ${show(d.digit)}`);
    if (typeof d.digit === 'string') this.dtmf.push(d.digit);
  }

  // "Mark message": Twilio echoes the name of each mark the backend sent, when the audio before
  // it has played or when clear drops it. Audio is "buffered and played in the order received",
  // so echoes come back in the order sent.
  #onMark(msg: Msg, p: (t: string) => void): void {
    const m = msg.mark;
    if (!isObject(m) || typeof m.name !== 'string') {
      p(`mark.name must be a string, got ${show(isObject(m) ? m.name : m)}`);
      return;
    }
    this.marks.push({ name: m.name, at: performance.now() });
    const i = this.#pendingMarks.indexOf(m.name);
    if (i < 0) p(`mark "${m.name}" was never sent, or was echoed twice`);
    else {
      if (i > 0) p(`mark "${m.name}" echoed before earlier mark "${this.#pendingMarks[0]}"`);
      this.#pendingMarks.splice(i, 1);
    }
  }

  // "Stop message"
  #onStop(msg: Msg, p: (t: string) => void): void {
    this.stopMessage = msg;
    const s = msg.stop;
    if (!isObject(s)) {
      p(`stop must be an object, got ${show(s)}`);
      return;
    }
    for (const key of ['accountSid', 'callSid'] as const) {
      const v = s[key];
      if (typeof v !== 'string') p(`stop.${key} must be a string, got ${show(v)}`);
      else if (this.startInfo && v !== this.startInfo[key]) p(`stop.${key} ${show(v)} differs from start.${key} ${show(this.startInfo[key])}`);
    }
  }

  /** Resolves when start arrives (rejects if the socket closes first or after `timeoutMs`). */
  async start(timeoutMs = 10_000): Promise<StartInfo> {
    if (this.startInfo) return this.startInfo;
    await this.waitFor((m) => m.event === 'start', timeoutMs);
    return this.startInfo!;
  }

  /** Media messages received on one track, in arrival order. */
  mediaMessages(track: 'inbound' | 'outbound' = 'inbound'): Msg[] {
    return this.messages
      .map((e) => e.msg)
      .filter((m) => m.event === 'media' && isObject(m.media) && m.media.track === track);
  }

  /** Decoded µ-law audio of one track ("inbound" = the caller), in chunk order, as 8 kHz Int16Array. */
  audio(track: 'inbound' | 'outbound' = 'inbound'): Int16Array {
    const list = [...(this.#media.get(track) ?? [])].sort((a, b) => a.chunk - b.chunk);
    return muLawDecode(Buffer.concat(list.map((e) => e.bytes)));
  }

  #requireStreamSid(): string {
    const sid = this.startInfo?.streamSid;
    if (!sid) throw new Error('no start message yet: streamSid unknown');
    return sid;
  }

  #send(obj: Msg): void {
    this.ws.send(JSON.stringify(obj));
  }

  /** Sends 8 kHz PCM to the call as µ-law media messages of `chunkMs` (default 20) each; returns the count. */
  sendAudio(pcm: Int16Array, chunkMs = 20): number {
    const streamSid = this.#requireStreamSid();
    const step = Math.max(1, Math.round(8 * chunkMs));
    let sent = 0;
    // "The audio can be of any size": a short last chunk is sent as is.
    for (let i = 0; i < pcm.length; i += step) {
      const payload = muLawEncode(pcm.subarray(i, i + step)).toString('base64');
      this.#send({ event: 'media', streamSid, media: { payload } });
      sent++;
    }
    return sent;
  }

  sendMark(name: string): void {
    const streamSid = this.#requireStreamSid();
    this.#pendingMarks.push(name);
    this.#send({ event: 'mark', streamSid, mark: { name } });
  }

  sendClear(): void {
    this.#send({ event: 'clear', streamSid: this.#requireStreamSid() });
  }

  /** For malformed-input tests. A Buffer goes as a binary frame unless `binary: false`. */
  sendRaw(data: string | Buffer, opts: { binary?: boolean } = {}): void {
    if (typeof data === 'string') {
      // A well-formed mark sent this way is still expected back.
      try {
        const m: unknown = JSON.parse(data);
        if (isObject(m) && m.event === 'mark' && isObject(m.mark) && typeof m.mark.name === 'string') this.#pendingMarks.push(m.mark.name);
      } catch {
        // not JSON: nothing to expect back
      }
    }
    this.ws.send(data, { binary: opts.binary ?? typeof data !== 'string' });
  }

  /** Marks sent and not echoed yet, oldest first. */
  get pendingMarks(): readonly string[] {
    return this.#pendingMarks;
  }

  /**
   * Resolves with the first message from index `fromIndex` on (already received or later) that
   * matches; rejects on timeout or when the socket closes first.
   */
  waitFor(pred: (msg: Msg) => boolean, timeoutMs = 5000, fromIndex = 0): Promise<Msg> {
    for (let i = fromIndex; i < this.messages.length; i++) {
      const m = this.messages[i]!.msg;
      if (pred(m)) return Promise.resolve(m);
    }
    if (this.isClosed) return Promise.reject(new Error('socket already closed'));
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`waitFor timed out after ${timeoutMs} ms (${this.messages.length} messages received)`));
        }, timeoutMs),
      };
      this.#waiters.add(w);
    });
  }

  /** Stop reading: pauses the underlying socket (a backend that stops reading, for back-pressure tests). */
  stopReading(): void {
    this.ws.pause();
  }

  resumeReading(): void {
    this.ws.resume();
  }

  close(code = 1000, reason = ''): void {
    this.closedLocally = true;
    this.ws.close(code, reason);
  }

  /** Drops the TCP connection without a close frame. */
  terminate(): void {
    this.closedLocally = true;
    this.ws.terminate();
  }
}

/** A WebSocket server on 127.0.0.1 that acts as a Twilio Media Streams backend. */
export class TwilioMediaStreamsPeer {
  readonly url: string;
  readonly port: number;
  readonly connections: TwilioConnection[] = [];
  /** Headers and URL (path+query) of each upgrade request, in order. */
  readonly upgrades: UpgradeRecord[] = [];
  /** Answer upgrades with this HTTP status instead of accepting; may be changed at any time. */
  rejectStatus: number | undefined;
  readonly path: string | undefined;

  #http: Server;
  #wss: WebSocketServer;
  #handedOut = 0;
  #waiters: { resolve: (c: TwilioConnection) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];

  private constructor(http: Server, wss: WebSocketServer, port: number, opts: TwilioPeerOptions) {
    this.#http = http;
    this.#wss = wss;
    this.port = port;
    this.path = opts.path;
    this.rejectStatus = opts.rejectStatus;
    this.url = `ws://127.0.0.1:${port}${opts.path ?? '/'}`;
    http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
  }

  static async listen(opts: TwilioPeerOptions = {}): Promise<TwilioMediaStreamsPeer> {
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' });
      res.end('WebSocket upgrade required\n');
    });
    const wss = new WebSocketServer({ noServer: true });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(0, '127.0.0.1', () => {
        http.off('error', reject);
        resolve();
      });
    });
    const addr = http.address();
    if (addr === null || typeof addr === 'string') throw new Error('no TCP address');
    return new TwilioMediaStreamsPeer(http, wss, addr.port, opts);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const record: UpgradeRecord = { url: req.url ?? '', headers: { ...(req.headers as IncomingHttpHeaders) } };
    this.upgrades.push(record);
    socket.on('error', () => {});
    const pathname = new URL(record.url, 'http://x').pathname;
    const status = this.rejectStatus ?? (this.path !== undefined && pathname !== this.path ? 404 : undefined);
    if (status !== undefined) {
      socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Rejected'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      this.connections.push(new TwilioConnection(ws, record));
      this.#drain();
    });
  }

  #drain(): void {
    while (this.#waiters.length > 0 && this.#handedOut < this.connections.length) {
      const w = this.#waiters.shift()!;
      clearTimeout(w.timer);
      w.resolve(this.connections[this.#handedOut++]!);
    }
  }

  /** Resolves with the next connection accepted (or one already accepted and not yet handed out). */
  nextConnection(timeoutMs = 10_000): Promise<TwilioConnection> {
    return new Promise((resolve, reject) => {
      const w = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.#waiters.indexOf(w);
          if (i >= 0) this.#waiters.splice(i, 1);
          reject(new Error(`no connection within ${timeoutMs} ms (${this.upgrades.length} upgrade requests seen)`));
        }, timeoutMs),
      };
      this.#waiters.push(w);
      this.#drain();
    });
  }

  async close(): Promise<void> {
    for (const w of this.#waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error('peer closed'));
    }
    for (const c of this.connections) if (!c.isClosed) c.ws.terminate();
    await Promise.all(this.connections.map((c) => c.closed));
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
    this.#http.closeAllConnections();
    await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }
}
