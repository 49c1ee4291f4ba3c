/**
 * The resampler's inner loop (exact polyphase tables) as WebAssembly SIMD: four taps per
 * multiply-add on 32-bit floats, no bounds checks. Every AI call resamples twice (a 16 kHz
 * fork, 16 kHz speech injected), and in JavaScript that loop was the largest item of such a
 * call's profile. The module is a few hundred bytes written out below and compiled once;
 * where the engine has no WebAssembly SIMD the resampler keeps its JavaScript loop.
 *
 * Outputs are made four at a time while four are wanted and buffered: the sums, rounding,
 * clamping and store of four outputs are then one vector each instead of four scalar runs,
 * and at 8 <-> 16 kHz (four or five tap turns an output) that fixed work was half the cost.
 * The four sums are transposed and added in the one-at-a-time loop's lane order, so both
 * give the same bits and any chunking of a stream the same output.
 *
 * Memory of one kernel: [0, 16) pos and frac written back; the table (rows padded to a
 * multiple of eight taps with zeros); the output (int16); the input buffer (float32) last, so
 * it can grow with memory.grow.
 */

// Opcodes used below (WebAssembly core 2.0 + fixed-width SIMD).
const BLOCK = 0x02, LOOP = 0x03, IF = 0x04, END = 0x0b, BR = 0x0c, BR_IF = 0x0d, VOID = 0x40;
const GET = 0x20, SET = 0x21, TEE = 0x22;
const I32_CONST = 0x41, F32_CONST = 0x43;
const I32_STORE = 0x36, I32_STORE16 = 0x3b;
const I32_GE_S = 0x4e, I32_LT_U = 0x49;
const I32_ADD = 0x6a, I32_SUB = 0x6b, I32_MUL = 0x6c, I32_SHL = 0x74;
const F32_ADD = 0x92, F32_MIN = 0x96, F32_MAX = 0x97, F32_COPYSIGN = 0x98;
const SIMD = 0xfd, MISC = 0xfc;
const I32_GT_S = 0x4a;
const V128_LOAD = [SIMD, 0x00], V128_CONST = [SIMD, 0x0c], I8X16_SHUFFLE = [SIMD, 0x0d];
const F32X4_SPLAT = [SIMD, 0x13], F32X4_EXTRACT = [SIMD, 0x1f];
const V128_AND = [SIMD, 0x4e], V128_OR = [SIMD, 0x50], V128_STORE64_LANE = [SIMD, 0x5b];
const I16X8_NARROW_I32X4_S = [SIMD, 0x85, 0x01];
const F32X4_ADD = [SIMD, 0xe4, 0x01], F32X4_MUL = [SIMD, 0xe6, 0x01];
const F32X4_PMIN = [SIMD, 0xea, 0x01], F32X4_PMAX = [SIMD, 0xeb, 0x01];
const I32X4_TRUNC_SAT_F32X4_S = [SIMD, 0xf8, 0x01];
const I32_TRUNC_SAT_F32_S = [MISC, 0x00];
const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;

// Parameters, then locals, by index.
const P = { tab: 0, stride: 1, half: 2, up: 3, stepInt: 4, stepFrac: 5, buf: 6, len: 7, pos: 8, frac: 9, dst: 10, n: 11, limit: 12 } as const;
const PARAMS = Object.keys(P).length;
/** x[k] / row[k]: the samples and the table row of the k-th of four outputs; a[k] + b[k] its sum. */
const L = (() => {
  let i = PARAMS;
  const take = (count: number): number[] => Array.from({ length: count }, () => i++);
  const x = take(4), row = take(4), [end, px, pf] = take(3) as [number, number, number];
  const a = take(4), b = take(4), [v] = take(1) as [number];
  return { x, row, end, px, pf, a, b, v };
})();
const LOCALS = [11, I32, 8, V128, 1, F32];

const f32 = (v: number): number[] => [...new Uint8Array(new Float32Array([v]).buffer)];
const uleb = (v: number): number[] => {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
};
const sleb = (v: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
};
const get = (i: number): number[] => [GET, i];
const set = (i: number): number[] => [SET, i];
const i32 = (v: number): number[] => [I32_CONST, ...sleb(v)];
/** memarg: alignment exponent, offset 0. */
const mem = (align: number): number[] => [align, 0];
/** v128.const of four equal 32-bit lanes. */
const v128x4 = (bytes: number[]): number[] => [...V128_CONST, ...bytes, ...bytes, ...bytes, ...bytes];
/** i8x16.shuffle picking 32-bit lanes: 0-3 from the first operand, 4-7 from the second. */
const lanes = (...l: number[]): number[] => [...I8X16_SHUFFLE, ...l.flatMap((k) => [4 * k, 4 * k + 1, 4 * k + 2, 4 * k + 3])];

/** (pos, frac) += (stepInt, stepFrac / up), carried. */
const advance = (pos: number, frac: number): number[] => [
  ...get(pos), ...get(P.stepInt), I32_ADD, ...set(pos),
  ...get(frac), ...get(P.stepFrac), I32_ADD, TEE, frac, ...get(P.up), I32_GE_S,
  IF, VOID,
  ...get(frac), ...get(P.up), I32_SUB, ...set(frac),
  ...get(pos), ...i32(1), I32_ADD, ...set(pos),
  END,
];
/** x = buf + (pos - half + 1) * 4; row = tab + frac * stride * 4 */
const address = (pos: number, frac: number, x: number, row: number): number[] => [
  ...get(P.buf), ...get(pos), ...get(P.half), I32_SUB, ...i32(1), I32_ADD, ...i32(2), I32_SHL, I32_ADD, ...set(x),
  ...get(P.tab), ...get(frac), ...get(P.stride), I32_MUL, ...i32(2), I32_SHL, I32_ADD, ...set(row),
];
/** acc += x[off..] * row[off..] (four taps) */
const mulAdd = (acc: number, x: number, row: number, off: number): number[] => [
  ...get(acc), ...get(x), ...V128_LOAD, 0, off, ...get(row), ...V128_LOAD, 4, off, ...F32X4_MUL, ...F32X4_ADD, ...set(acc),
];
const K = [0, 1, 2, 3];

/**
 * while (n + 4 <= limit && the fourth output's taps are buffered) { four outputs; advance four times }
 * Each output's sum is a[k] + b[k] (taps 0-3, 8-11, ... and 4-7, 12-15, ...), then its lanes
 * 0 + 1 + 2 + 3 in that order, as the loop below adds them.
 */
const four: number[] = [
  BLOCK, VOID,
  LOOP, VOID,
  ...get(P.n), ...i32(4), I32_ADD, ...get(P.limit), I32_GT_S, BR_IF, 1,
  ...get(P.pos), ...set(L.px), ...get(P.frac), ...set(L.pf),
  ...K.flatMap((k) => [...address(L.px, L.pf, L.x[k]!, L.row[k]!), ...(k < 3 ? advance(L.px, L.pf) : [])]),
  ...get(L.px), ...get(P.half), I32_ADD, ...get(P.len), I32_GE_S, BR_IF, 1,
  ...advance(L.px, L.pf),
  ...get(L.row[0]!), ...get(P.stride), ...i32(2), I32_SHL, I32_ADD, ...set(L.end),
  F32_CONST, ...f32(0), ...F32X4_SPLAT, ...set(L.a[0]!),
  ...[...L.a.slice(1), ...L.b].flatMap((acc) => [...get(L.a[0]!), ...set(acc)]),
  LOOP, VOID,
  ...K.flatMap((k) => [...mulAdd(L.a[k]!, L.x[k]!, L.row[k]!, 0), ...mulAdd(L.b[k]!, L.x[k]!, L.row[k]!, 16)]),
  ...K.flatMap((k) => [...get(L.x[k]!), ...i32(32), I32_ADD, ...set(L.x[k]!)]),
  ...K.slice(1).flatMap((k) => [...get(L.row[k]!), ...i32(32), I32_ADD, ...set(L.row[k]!)]),
  ...get(L.row[0]!), ...i32(32), I32_ADD, TEE, L.row[0]!, ...get(L.end), I32_LT_U, BR_IF, 0,
  END,
  ...K.flatMap((k) => [...get(L.a[k]!), ...get(L.b[k]!), ...F32X4_ADD, ...set(L.a[k]!)]),
  // transpose: b[0] = (a0.0 a1.0 a0.1 a1.1), b[1] the same of a2/a3, b[2]/b[3] of lanes 2 and 3
  ...get(L.a[0]!), ...get(L.a[1]!), ...lanes(0, 4, 1, 5), ...set(L.b[0]!),
  ...get(L.a[2]!), ...get(L.a[3]!), ...lanes(0, 4, 1, 5), ...set(L.b[1]!),
  ...get(L.a[0]!), ...get(L.a[1]!), ...lanes(2, 6, 3, 7), ...set(L.b[2]!),
  ...get(L.a[2]!), ...get(L.a[3]!), ...lanes(2, 6, 3, 7), ...set(L.b[3]!),
  ...get(L.b[0]!), ...get(L.b[1]!), ...lanes(0, 1, 4, 5),
  ...get(L.b[0]!), ...get(L.b[1]!), ...lanes(2, 3, 6, 7), ...F32X4_ADD,
  ...get(L.b[2]!), ...get(L.b[3]!), ...lanes(0, 1, 4, 5), ...F32X4_ADD,
  ...get(L.b[2]!), ...get(L.b[3]!), ...lanes(2, 3, 6, 7), ...F32X4_ADD, ...set(L.a[0]!),
  // dst[n .. n + 4] = saturate(round half away from zero): v + (0.5 with v's sign)
  ...get(P.dst), ...get(P.n), ...i32(1), I32_SHL, I32_ADD,
  ...get(L.a[0]!), ...get(L.a[0]!), ...v128x4([0, 0, 0, 0x80]), ...V128_AND, ...v128x4(f32(0.5)), ...V128_OR, ...F32X4_ADD,
  ...v128x4(f32(-32768)), ...F32X4_PMAX, ...v128x4(f32(32767)), ...F32X4_PMIN,
  ...I32X4_TRUNC_SAT_F32X4_S, TEE, L.a[0]!, ...get(L.a[0]!), ...I16X8_NARROW_I32X4_S,
  ...V128_STORE64_LANE, ...mem(1), 0,
  ...get(P.n), ...i32(4), I32_ADD, ...set(P.n),
  ...get(L.px), ...set(P.pos), ...get(L.pf), ...set(P.frac),
  BR, 0,
  END,
  END,
];

const [x, row, acc, acc2] = [L.x[0]!, L.row[0]!, L.a[0]!, L.b[0]!];
/** Then one at a time: while (n < limit && pos + half < len) { out[n++] = row(frac) . buf[pos - half + 1 ..]; advance } */
const body: number[] = [
  ...four,
  BLOCK, VOID,
  LOOP, VOID,
  ...get(P.n), ...get(P.limit), I32_GE_S, BR_IF, 1,
  ...get(P.pos), ...get(P.half), I32_ADD, ...get(P.len), I32_GE_S, BR_IF, 1,
  ...address(P.pos, P.frac, x, row),
  ...get(row), ...get(P.stride), ...i32(2), I32_SHL, I32_ADD, ...set(L.end),
  F32_CONST, ...f32(0), ...F32X4_SPLAT, ...set(acc),
  ...get(acc), ...set(acc2),
  // eight taps a turn into two sums, so the adds of one do not wait for the other's
  LOOP, VOID,
  ...mulAdd(acc, x, row, 0), ...mulAdd(acc2, x, row, 16),
  ...get(x), ...i32(32), I32_ADD, ...set(x),
  ...get(row), ...i32(32), I32_ADD, TEE, row, ...get(L.end), I32_LT_U, BR_IF, 0,
  END,
  ...get(acc), ...get(acc2), ...F32X4_ADD, ...set(acc),
  ...get(acc), ...F32X4_EXTRACT, 0, ...get(acc), ...F32X4_EXTRACT, 1, F32_ADD,
  ...get(acc), ...F32X4_EXTRACT, 2, F32_ADD, ...get(acc), ...F32X4_EXTRACT, 3, F32_ADD, ...set(L.v),
  // dst[n] = saturate(round half away from zero)
  ...get(P.dst), ...get(P.n), ...i32(1), I32_SHL, I32_ADD,
  ...get(L.v), F32_CONST, ...f32(0.5), ...get(L.v), F32_COPYSIGN, F32_ADD,
  F32_CONST, ...f32(-32768), F32_MAX, F32_CONST, ...f32(32767), F32_MIN, ...I32_TRUNC_SAT_F32_S,
  I32_STORE16, ...mem(1),
  ...get(P.n), ...i32(1), I32_ADD, ...set(P.n),
  ...advance(P.pos, P.frac),
  BR, 0,
  END,
  END,
  ...i32(0), ...get(P.pos), I32_STORE, ...mem(2),
  ...i32(4), ...get(P.frac), I32_STORE, ...mem(2),
  ...get(P.n),
  END,
];

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}
const name = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s)];
const code = [...uleb(LOCALS.length / 2), ...LOCALS, ...body];

const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, [1, 0x60, PARAMS, ...Array<number>(PARAMS).fill(I32), 1, I32]),
  ...section(2, [1, ...name('env'), ...name('memory'), 0x02, 0x00, 1]),
  ...section(3, [1, 0]),
  ...section(7, [1, ...name('run'), 0x00, 0]),
  ...section(10, [1, ...uleb(code.length), ...code]),
]);

/** The part of the WebAssembly JavaScript API used here (the project's TypeScript libs carry no DOM). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: Record<string, unknown> };
  Memory: new (desc: { initial: number }) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

let compiled: object | null | undefined;
function moduleOrNull(): object | null {
  if (compiled !== undefined) return compiled;
  compiled = null;
  try {
    if (wasm?.validate(MODULE)) compiled = new wasm.Module(MODULE);
  } catch {
    // no WebAssembly or no SIMD here: the JavaScript loop stays
  }
  return compiled;
}

type RunFn = (...args: number[]) => number;
const PAGE = 65536;
const SLACK = 8;
const align16 = (v: number): number => (v + 15) & ~15;

/** One resampler's table, output area and input buffer in a WebAssembly memory of its own. */
export class SimdKernel {
  readonly #memory: WasmMemory;
  readonly #run: RunFn;
  readonly #stride: number;
  readonly #tab = 16;
  readonly #dst: number;
  readonly #dstCap: number;
  readonly #bufAt: number;
  #state!: Int32Array;
  #out!: Int16Array;
  /** The input buffer: the resampler writes samples here and keeps its own length. */
  buf!: Float32Array;

  /** null when this engine cannot run the module. */
  static create(table: Float64Array, rows: number, taps: number, bufSamples: number, outSamples: number): SimdKernel | null {
    const m = moduleOrNull();
    return m ? new SimdKernel(m, table, rows, taps, bufSamples, outSamples) : null;
  }

  private constructor(m: object, table: Float64Array, rows: number, taps: number, bufSamples: number, outSamples: number) {
    this.#stride = (taps + 7) & ~7;
    this.#dstCap = outSamples;
    this.#dst = align16(this.#tab + rows * this.#stride * 4);
    this.#bufAt = align16(this.#dst + outSamples * 2);
    // slack: the last vectors of a padded row may read past the samples (times 0)
    const bytes = this.#bufAt + (bufSamples + SLACK) * 4;
    this.#memory = new wasm!.Memory({ initial: Math.ceil(bytes / PAGE) });
    this.#run = new wasm!.Instance(m, { env: { memory: this.#memory } }).exports.run as RunFn;
    this.#views();
    const tab = new Float32Array(this.#memory.buffer, this.#tab, rows * this.#stride);
    for (let r = 0; r < rows; r++) tab.set(table.subarray(r * taps, (r + 1) * taps), r * this.#stride);
  }

  #views(): void {
    const b = this.#memory.buffer;
    this.#state = new Int32Array(b, 0, 2);
    this.#out = new Int16Array(b, this.#dst, this.#dstCap);
    this.buf = new Float32Array(b, this.#bufAt, (b.byteLength - this.#bufAt) / 4 - SLACK);
  }

  /** Makes room for `samples` input samples (contents kept). */
  ensure(samples: number): void {
    if (samples <= this.buf.length) return;
    const need = this.#bufAt + (samples + SLACK) * 4 - this.#memory.buffer.byteLength;
    this.#memory.grow(Math.ceil(need / PAGE));
    this.#views();
  }

  /** Where the last run() left the output position (integer part, fraction). */
  pos = 0;
  frac = 0;

  /**
   * Writes outputs into dst from n on while their taps are buffered, until dst[limit];
   * returns the new n and leaves the new position in pos / frac (no allocation per call).
   */
  run(half: number, up: number, stepInt: number, stepFrac: number, len: number, pos: number, frac: number, dst: Int16Array, n: number, limit: number): number {
    for (;;) {
      const want = Math.min(this.#dstCap, limit - n);
      if (want <= 0) break;
      const got = this.#run(this.#tab, this.#stride, half, up, stepInt, stepFrac, this.#bufAt, len, pos, frac, this.#dst, 0, want);
      pos = this.#state[0]!;
      frac = this.#state[1]!;
      dst.set(this.#out.subarray(0, got), n);
      n += got;
      if (got < want) break;
    }
    this.pos = pos;
    this.frac = frac;
    return n;
  }
}
