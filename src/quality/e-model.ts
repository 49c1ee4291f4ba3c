/**
 * Listening-quality MOS from the ITU-T G.107 E-model, simplified: default values for every
 * factor but the ones measured on a call (the codec's equipment impairment and its packet
 * loss robustness from G.113 appendix I, random loss, and one-way delay), so R = 93.2 - Id -
 * Ie,eff. Burst loss is treated as random (BurstR = 1); the advantage factor A is 0.
 */
export interface CodecImpairment {
  /** Ie: the codec's impairment with no loss. */
  ie: number;
  /** Bpl: how well its loss concealment copes. */
  bpl: number;
}

/** G.113 appendix I: G.711 with packet loss concealment; Opus (SILK/CELT at narrowband rates) by the usual planning values. */
export const CODEC_IMPAIRMENT: Record<'PCMU' | 'PCMA' | 'OPUS', CodecImpairment> = {
  PCMU: { ie: 0, bpl: 25.1 },
  PCMA: { ie: 0, bpl: 25.1 },
  OPUS: { ie: 0, bpl: 20 },
};

/** Ro - Is: the default basic signal-to-noise ratio less simultaneous impairments (G.107 defaults). */
const R_DEFAULT = 93.2;

export function rFactor(codec: CodecImpairment, lossRatio: number, oneWayDelayMs: number): number {
  const ppl = Math.max(0, Math.min(1, lossRatio)) * 100;
  const ieEff = codec.ie + (95 - codec.ie) * (ppl / (ppl + codec.bpl));
  // G.107's delay impairment, its common approximation: negligible below 177.3 ms.
  const d = Math.max(0, oneWayDelayMs);
  const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
  return R_DEFAULT - id - ieEff;
}

export function mosFromR(r: number): number {
  if (r <= 0) return 1;
  if (r >= 100) return 4.5;
  return 1 + 0.035 * r + r * (r - 60) * (100 - r) * 7e-6;
}
