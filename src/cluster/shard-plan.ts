import { join } from 'node:path';
import type { Config } from '../config/schema.ts';

/** What one media shard owns on the machine: nothing of it is shared with another shard. */
export interface ShardSlice {
  index: number;
  rtpMin: number;
  rtpMax: number;
  rtcMin: number;
  rtcMax: number;
  /** WebRTC server port of the shard's first mediasoup worker (worker w listens on +w). */
  webrtcPort: number;
  workers: number;
  spoolDir: string;
}

/**
 * Splits the RTP range, mediasoup's range and the WebRTC ports into disjoint slices, one per
 * shard, and gives each shard a spool directory of its own (one owner per spool). Pure: the
 * same configuration always gives the same slices, so a restarted shard gets its own back.
 */
export function planShards(config: Readonly<Config>, count: number): ShardSlice[] {
  const rtpPorts = Math.floor((config.rtp.port_max - config.rtp.port_min + 1) / 2);
  const rtcPorts = config.mediasoup.rtc_max_port - config.mediasoup.rtc_min_port + 1;
  if (rtpPorts < count * 2) throw new Error(`rtp.port_min..port_max holds ${rtpPorts} calls: too few for ${count} shards`);
  const workers = config.mediasoup.num_workers > 0 ? Math.max(1, Math.floor(config.mediasoup.num_workers / count)) : 1;
  const perShardRtp = Math.floor(rtpPorts / count);
  const perShardRtc = Math.floor(rtcPorts / count);
  return Array.from({ length: count }, (_, i) => {
    const rtpMin = config.rtp.port_min + i * perShardRtp * 2;
    const rtcMin = config.mediasoup.rtc_min_port + i * perShardRtc;
    return {
      index: i,
      rtpMin,
      rtpMax: rtpMin + perShardRtp * 2 - 1,
      rtcMin,
      rtcMax: rtcMin + perShardRtc - 1,
      webrtcPort: config.webrtc.port + i * workers,
      workers,
      spoolDir: join(config.recording.spool_dir, `shard-${i}`),
    };
  });
}

/** The shard that owns an RTP port, or null when the port is in no slice. */
export function shardOfPort(slices: readonly ShardSlice[], port: number): number | null {
  for (const s of slices) if (port >= s.rtpMin && port <= s.rtpMax) return s.index;
  return null;
}

/**
 * How many front-door processes relay for this many shards (0: the shards take the client
 * connections themselves, serving their own calls' requests directly).
 */
export function frontDoorCount(config: Readonly<Config>): number {
  // Measured (`npm run bench -- shards`): a relayed fork frame costs 26-34 us of CPU wherever
  // it is relayed, one served by the shard holding the connection nothing more; a connection's
  // new calls are placed on that shard, so most requests are never relayed. Front doors only
  // keep the relaying of the rest off the shards' media clocks.
  return config.cluster.front_doors === 'auto' ? 0 : Number(config.cluster.front_doors);
}
