import type { ReportBlock } from './rtcp.ts';

/** RTCP the service sends phones (RFC 3550 section 6): SR or RR, SDES CNAME, and BYE at the end, as one compound packet. */
/** A report block as the service writes it: the same fields it reads from phones. */
export type OutgoingBlock = ReportBlock;

export interface OutgoingReport {
  ssrc: number;
  /** Present when the service sent RTP since its last report: a sender report. */
  sender?: { ntpSec: number; ntpFrac: number; rtpTimestamp: number; packets: number; octets: number };
  blocks: OutgoingBlock[];
  cname: string;
  bye?: string;
}

const NTP_EPOCH_OFFSET_S = 2208988800;

/** Wall-clock milliseconds as an NTP timestamp (seconds since 1900 and a 32-bit fraction). */
export function ntpOf(unixMs: number): { sec: number; frac: number } {
  const sec = Math.floor(unixMs / 1000);
  return { sec: (sec + NTP_EPOCH_OFFSET_S) >>> 0, frac: Math.floor(((unixMs - sec * 1000) / 1000) * 2 ** 32) >>> 0 };
}

/** The middle 32 bits of an NTP timestamp, the unit of LSR and of round-trip arithmetic. */
export function ntpMiddle(sec: number, frac: number): number {
  return (((sec & 0xffff) << 16) | (frac >>> 16)) >>> 0;
}

function block(b: Buffer, o: number, r: OutgoingBlock): void {
  b.writeUInt32BE(r.ssrc >>> 0, o);
  b[o + 4] = Math.max(0, Math.min(255, Math.floor(r.fractionLost * 256)));
  const lost = Math.max(-0x800000, Math.min(0x7fffff, r.cumulativeLost));
  b.writeUIntBE(lost < 0 ? lost + 0x1000000 : lost, o + 5, 3);
  b.writeUInt32BE(r.extendedHighestSeq >>> 0, o + 8);
  b.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(r.jitter))), o + 12);
  b.writeUInt32BE(r.lsr >>> 0, o + 16);
  b.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(r.dlsr))), o + 20);
}

export function buildRtcp(r: OutgoingReport): Buffer {
  const blocks = r.blocks.slice(0, 31);
  const head = r.sender ? 28 : 8;
  const report = Buffer.alloc(head + blocks.length * 24);
  report[0] = 0x80 | blocks.length;
  report[1] = r.sender ? 200 : 201;
  report.writeUInt16BE(report.length / 4 - 1, 2);
  report.writeUInt32BE(r.ssrc >>> 0, 4);
  if (r.sender) {
    report.writeUInt32BE(r.sender.ntpSec >>> 0, 8);
    report.writeUInt32BE(r.sender.ntpFrac >>> 0, 12);
    report.writeUInt32BE(r.sender.rtpTimestamp >>> 0, 16);
    report.writeUInt32BE(r.sender.packets >>> 0, 20);
    report.writeUInt32BE(r.sender.octets >>> 0, 24);
  }
  blocks.forEach((b, i) => block(report, head + i * 24, b));
  const cname = Buffer.from(r.cname.slice(0, 255), 'utf8').subarray(0, 255);
  const sdesLen = Math.ceil((8 + 2 + cname.length + 1) / 4) * 4;
  const sdes = Buffer.alloc(sdesLen);
  sdes[0] = 0x81;
  sdes[1] = 202;
  sdes.writeUInt16BE(sdesLen / 4 - 1, 2);
  sdes.writeUInt32BE(r.ssrc >>> 0, 4);
  sdes[8] = 1;
  sdes[9] = cname.length;
  cname.copy(sdes, 10);
  const parts = [report, sdes];
  if (r.bye !== undefined) {
    const reason = Buffer.from(r.bye, 'utf8').subarray(0, 255);
    const byeLen = Math.ceil((8 + (reason.length ? 1 + reason.length : 0)) / 4) * 4;
    const bye = Buffer.alloc(byeLen);
    bye[0] = 0x81;
    bye[1] = 203;
    bye.writeUInt16BE(byeLen / 4 - 1, 2);
    bye.writeUInt32BE(r.ssrc >>> 0, 4);
    if (reason.length) {
      bye[8] = reason.length;
      reason.copy(bye, 9);
    }
    parts.push(bye);
  }
  return Buffer.concat(parts);
}
