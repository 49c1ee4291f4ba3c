import { performance } from 'node:perf_hooks';
import type { DestinationStream } from 'pino';
import type { LoadedConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { HealthState, healthHandlers } from './grpc/health.ts';
import { mediaServiceHandlers } from './grpc/media-service.ts';
import { GrpcServer } from './grpc/server.ts';
import { HttpServer } from './http/server.ts';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { MediaStreams, isStreamGrant } from './media-streams/media-streams.ts';
import { IdleCompaction } from './util/idle-compaction.ts';
import { createLogging, type Logger, type Logging } from './logging/logger.ts';
import { WorkerPool, type WebRtcListen } from './media-engine/worker-pool.ts';
import { createMetrics, scrapedCounter, type Metrics } from './metrics/metrics.ts';
import { createEventPublisher } from './events/index.ts';
import type { EventPublisher } from './events/types.ts';
import { MediaClock } from './media-path/clock.ts';
import { raiseLoopPriority, registerPriorityMetric } from './media-path/loop-priority.ts';
import { WakeCoalescer } from './media-path/wake-coalescing.ts';
import { PromptCache } from './playback/prompt-cache.ts';
import { PromptLoader } from './playback/prompt-loader.ts';
import { registerPromptCacheMetrics } from './playback/prompt-metrics.ts';
import { CALL_RATE, type CallSession } from './sessions/call-session.ts';
import { SessionMetrics } from './sessions/session-metrics.ts';
import { SessionRegistry, type SessionWatcher } from './sessions/session-registry.ts';
import type { ConferenceSnapshot } from './conference/conference-snapshot.ts';
import type { CallSnapshot } from './sessions/call-snapshot.ts';
import { RecordingMetrics } from './recording/metrics.ts';
import { RecordingManager } from './recording/recording-manager.ts';
import { UploadQueue } from './recording/upload-queue.ts';
import { recordingAvailableEvent } from './events/types.ts';
import { FileStore } from './storage/file-store.ts';
import { ForkMetrics } from './audio-fork/fork-metrics.ts';
import { S3Store } from './storage/s3-store.ts';
import { RoomTokens } from './signaling/tokens.ts';
import { CallBridges } from './bridge/call-bridges.ts';
import { Conferences } from './conference/conferences.ts';
import { RoomRegistry } from './rooms/room-registry.ts';
import type { WebRtcQuality } from './quality/webrtc-quality.ts';
import { roomsDebugRoute } from './rooms/debug-route.ts';
import { SignalingGate } from './signaling/signaling-gate.ts';
import { demoEnabled } from './signaling/demo-mode.ts';
import { demoTokenRoute } from './signaling/demo-token.ts';

/** Everything the handlers need, built once here and passed down; no module holds state. */
export interface AppState {
  readonly config: Readonly<Config>;
  readonly version: string;
  readonly logging: Logging;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly workers: WorkerPool;
  readonly health: HealthState;
  readonly events: EventPublisher;
  readonly clock: MediaClock;
  readonly sessions: SessionRegistry;
  readonly prompts: PromptLoader;
  readonly recordings: RecordingManager;
  readonly uploads: UploadQueue;
  readonly bridges: CallBridges;
  readonly conferences: Conferences;
}

export interface App {
  readonly state: AppState;
  /** Serves one gRPC stream of a client connection this process holds (a shard's); null when it cannot. */
  readonly serveGrpcStream: ReturnType<GrpcServer['streamServer']>;
  start(): Promise<{ grpcPort: number; httpPort: number }>;
  /** Stop accepting, drain, close workers. Idempotent. */
  stop(reason: string): Promise<void>;
}

export interface AppOptions {
  version: string;
  logDestination?: DestinationStream;
  /** This process is one media shard of an instance: private sockets behind the front door. */
  shard?: ShardRole;
}

export interface ShardRole {
  index: number;
  grpcSocket: string;
  httpSocket: string;
  watcher: SessionWatcher;
  /** The calls and conferences to carry on, and where to say which could not be. */
  restore(): Promise<{ calls: CallSnapshot[]; conferences: ConferenceSnapshot[] }>;
  lost(snap: CallSnapshot, reason: string): void;
}

/** Bridges within the shard that the previous process carried, made again where both calls went on. */
function rebridge(restored: readonly CallSnapshot[], sessions: SessionRegistry, bridges: CallBridges, log: Logger): void {
  for (const snap of restored) {
    if (snap.bridgedWith === undefined || snap.port > snap.bridgedWith) continue;
    const a = sessions.byPort(snap.port);
    const b = sessions.byPort(snap.bridgedWith);
    if (!a || !b) continue;
    try {
      bridges.bridge(a, b);
    } catch (error) {
      log.warn({ event: 'BRIDGE_RESTORE_FAILED', error, attributes: { 'rtp.port': snap.port, 'bridge.peer_port': snap.bridgedWith } }, 'a bridge could not be made again');
    }
  }
}

async function restoreCalls(sessions: SessionRegistry, shard: ShardRole, log: Logger): Promise<{ restored: CallSnapshot[]; conferences: ConferenceSnapshot[] }> {
  const { calls, conferences } = await shard.restore();
  const restored: CallSnapshot[] = [];
  for (const snap of calls) {
    try {
      await sessions.restore(snap);
      restored.push(snap);
    } catch (error) {
      log.error({ event: 'SESSION_RESTORE_FAILED', error, attributes: { 'rtp.port': snap.port, 'sip.call_id': snap.callId } }, 'a call could not be carried on');
      shard.lost(snap, error instanceof Error ? error.message : String(error));
    }
  }
  if (calls.length > 0) {
    log.info(
      { event: 'SESSIONS_RESTORED', attributes: { 'calls.restored': restored.length, 'calls.lost': calls.length - restored.length, 'process.uptime_ms': Math.round(performance.now()) } },
      'calls of the previous process carried on',
    );
  }
  return { restored, conferences };
}

export async function createApp(loaded: LoadedConfig, opts: AppOptions): Promise<App> {
  const { config } = loaded;
  const shard = opts.shard;
  const logging = createLogging({
    config,
    version: opts.version,
    ...(opts.logDestination ? { destination: opts.logDestination } : {}),
    ...(shard ? { shard: shard.index } : {}),
  });
  const log = logging.process;
  log.info(
    { event: 'CONFIG_LOADED', attributes: { 'config.toml': loaded.files.toml, 'config.dotenv': loaded.files.dotenv } },
    'configuration loaded',
  );
  if (!shard && !config.rtp.advertised_ip && ['0.0.0.0', '::', ''].includes(config.rtp.listen_address)) {
    log.warn({ event: 'RTP_ADDRESS_UNKNOWN' }, 'RTP_SERVICE_ADVERTISED_IP is not set: AllocatePort answers no rtp_address, signalling must supply it');
  }
  // Before any thread or child of ours starts: they inherit it.
  raiseLoopPriority(config.rtp.priority, log);
  const metrics = createMetrics();
  const health = new HealthState(log);
  const webRtc = webRtcListen(config, log);
  const events = await createEventPublisher({ config: config.events, logger: log, registry: metrics.registry });
  const clock = new MediaClock({ onError: (error) => log.error({ event: 'CLOCK_TICK_FAILED', error }, 'a call failed on the media clock') });
  registerPriorityMetric(metrics.registry);
  scrapedCounter(metrics.registry, 'log_lines_dropped_total', 'Log lines dropped because stdout was not read fast enough (the media clock never waits for it)', () => logging.droppedLines());
  scrapedCounter(metrics.registry, 'clock_late_ticks_total', 'Media clock slots run more than a slot (20 ms) late: every call on the clock sent late', () => clock.lateTicks);
  const wake = new WakeCoalescer(config.rtp.wake_window_ms);
  scrapedCounter(metrics.registry, 'loop_naps_total', 'Naps the media loop took after a turn with RTP so that packets gather (rtp.wake_window_ms)', () => wake.naps);
  const sessions = new SessionRegistry({
    wake,
    config: config.rtp,
    clock,
    logging,
    events,
    metrics: new SessionMetrics(metrics),
    ...(shard ? { watcher: shard.watcher } : {}),
  });
  // Calls this shard's previous process carried go on before anything else starts: their
  // phones hear the service again as soon as possible.
  const { restored, conferences: conferencesBefore } = shard ? await restoreCalls(sessions, shard, log) : { restored: [], conferences: [] };
  const workers = await WorkerPool.create({ config: config.mediasoup, logger: log, metrics, webRtc });
  const promptCache = new PromptCache(config.playback.cache_max_bytes);
  registerPromptCacheMetrics(promptCache, metrics.registry);
  const prompts = new PromptLoader({
    assetsRoot: config.assets.base_path,
    cache: promptCache,
    rate: CALL_RATE,
    maxSeconds: config.playback.max_prompt_seconds,
    decodeTimeoutMs: config.playback.decode_timeout_ms,
    decoderIdleMs: config.playback.decoder_idle_seconds * 1000,
    http: { enabled: config.playback.http_enabled, maxBytes: config.playback.http_max_bytes, timeoutMs: config.playback.http_timeout_ms },
  });
  const recordingMetrics = new RecordingMetrics(metrics);
  const s3 = new S3Store({ config: config.bucket, local: new FileStore() });
  const uploads = new UploadQueue({
    store: s3,
    spoolDir: config.recording.spool_dir,
    concurrency: Math.max(1, config.recording.upload_concurrency),
    maxBackoffMs: config.recording.max_backoff_seconds * 1000,
    permanentFailureAttempts: config.recording.permanent_failure_attempts,
    logging,
    metrics: recordingMetrics,
    onStored: (meta, stored) =>
      events.publish(
        recordingAvailableEvent({ traceId: meta.traceId, callId: meta.callId, tenantId: meta.tenantId, recordingUri: stored.uri, publicUrl: stored.publicUrl }),
      ),
  });
  const recordings = new RecordingManager({
    spoolDir: config.recording.spool_dir,
    fileRoot: config.recording.file_root,
    uploads,
    metrics: recordingMetrics,
    logging,
    transcodeConcurrency: config.recording.transcode_concurrency,
  });
  // Recordings of calls carried on go on in their files; the others are stored.
  const continuing = new Map<string, CallSession>();
  for (const snap of restored) {
    const s = snap.recording ? sessions.byPort(snap.port) : undefined;
    if (s && snap.recording) continuing.set(snap.recording.id, s);
  }
  await recordings.recover(continuing);
  const bridges = new CallBridges({ metrics, clock });
  rebridge(restored, sessions, bridges, log);
  const conferences = new Conferences({ config, clock, logging, events, prompts, bridges, metrics, recordings, release: (s) => sessions.release(s.port) });
  for (const snap of conferencesBefore) {
    try {
      conferences.restore(snap, (callId) => sessions.byCallId(callId));
    } catch (error) {
      log.error({ event: 'CONFERENCE_RESTORE_FAILED', error, attributes: { 'conference.id': snap.create.id } }, 'a conference could not be made again');
    }
  }
  const state: AppState = { config, version: opts.version, logging, log, metrics, workers, health, events, clock, sessions, prompts, recordings, uploads, bridges, conferences };

  const tokens = new RoomTokens(config.signaling.token_secret);
  if (tokens.ephemeral) log.warn({ event: 'SIGNALING_SECRET_EPHEMERAL' }, 'SIGNALING_TOKEN_SECRET is not set: room tokens are signed with a random secret and die with this process');
  const forkMetrics = new ForkMetrics(metrics);
  const mediaStreams = new MediaStreams({ config, sessions, tokens: tokens.sibling('ms1', isStreamGrant), logging, metrics, forkMetrics, events });
  // The rooms are made below, with the HTTP server they serve on; asked only once a request comes.
  const roomQuality = (roomId: string): Promise<WebRtcQuality[]> | undefined => rooms.get(roomId)?.quality();
  const deps = { logging, metrics, config, sessions, prompts, recordings, tokens, bridges, forkMetrics, mediaStreams, conferences, roomQuality };
  const grpcServer = new GrpcServer({
    config: config.grpc,
    logger: log,
    services: { media: mediaServiceHandlers(deps), health: healthHandlers(health) },
    ...(shard ? { socketPath: shard.grpcSocket } : {}),
  });
  let draining = false;
  const http = new HttpServer({
    config: config.http,
    logger: log,
    metrics,
    readiness: () => {
      const checks = { serving: health.status === 'SERVING', workers: workers.alive > 0, draining: !draining };
      return { ready: Object.values(checks).every(Boolean), checks };
    },
    ...(shard ? { socketPath: shard.httpSocket } : {}),
  });

  // What an operator checks for leaks: live handles by kind next to the number of calls.
  http.use((req, res) => {
    if (req.url !== '/debug/resources' || req.method !== 'GET') return false;
    const counts: Record<string, number> = {};
    for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      `${JSON.stringify({ sessions: sessions.size, rooms: rooms.size, resources: counts, memory: process.memoryUsage(), clock: { lateTicks: clock.lateTicks, recentLate: clock.recentLate, timeOrigin: performance.timeOrigin } })}\n`,
    );
    return true;
  });

  const rooms = new RoomRegistry({
    workers,
    sessions,
    conferences,
    clock,
    logging,
    metrics,
    maxPeers: config.signaling.max_peers_per_room,
    settings: { complexity: config.transcode.opus_complexity, bitrate: config.transcode.opus_bitrate },
  });
  const compaction = new IdleCompaction({ idle: () => sessions.size === 0 && rooms.size === 0, activity: () => sessions.opened, load: () => sessions.size + rooms.size, checkMs: 10_000, log });
  const signaling = new SignalingGate({ path: config.signaling.path, tokens, rooms, prompts, logging, metrics });
  http.use(signaling.route);
  http.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {});
    if (mediaStreams.handleUpgrade(req, socket, head) || signaling.handleUpgrade(req, socket, head)) return;
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nnothing upgrades on this path\n');
  });
  http.use(roomsDebugRoute(rooms));
  if (demoEnabled(config.signaling.demo_enabled, config.service.env)) {
    log.warn(
      { event: 'WEB_DEMO_ENABLED', attributes: { 'service.env': config.service.env, 'signaling.demo_enabled': String(config.signaling.demo_enabled) } },
      'the web demo is on: GET /demo/token issues room tokens to anyone who asks (never for a call); SIGNALING_DEMO_ENABLED=false turns it off',
    );
    http.use(demoTokenRoute({ tokens, isCallRoom: (id) => rooms.isCallRoom(id), signalingPath: config.signaling.path }));
    // esbuild and the bundling load only where the demo is on.
    const { webDemoRoute } = await import('./web-demo/demo-route.ts');
    http.use(await webDemoRoute({ logger: log, signalingPath: config.signaling.path }));
  }

  let stopping: Promise<void> | undefined;
  let cutDrain: (() => void) | undefined;
  return {
    state,
    serveGrpcStream: grpcServer.streamServer(),
    async start() {
      const httpPort = await http.start();
      const grpcPort = await grpcServer.start();
      health.set('SERVING');
      compaction.afterStart(COMPACT_AFTER_START_MS);
      log.info(
        {
          // The instance's own SERVICE_STARTED comes from its supervisor, once every shard is.
          event: shard ? 'SHARD_STARTED' : 'SERVICE_STARTED',
          attributes: { 'grpc.port': grpcPort, 'http.port': httpPort, 'grpc.tls': grpcServer.tls, 'mediasoup.workers': workers.size },
        },
        `media service listening: gRPC ${grpcPort}, HTTP ${httpPort}`,
      );
      return { grpcPort, httpPort };
    },
    stop(reason: string) {
      if (stopping) {
        // A second signal: the operator will not wait for live calls.
        cutDrain?.();
        return stopping;
      }
      stopping = (async () => {
        const graceMs = config.grpc.shutdown_grace_seconds * 1000;
        log.info({ event: 'SERVICE_STOPPING', attributes: { reason, 'calls.live': sessions.size, 'drain.grace_ms': graceMs } }, 'stopping: no new calls, live calls may finish');
        draining = true;
        health.set('NOT_SERVING');
        sessions.drain();
        // Live calls (and every RPC about them: prompts, forks, ReleasePort) go on until
        // they end or the grace passes; then they are closed, so their streams end with a
        // status saying so instead of being cut by the server's shutdown.
        const cut = new Promise<boolean>((r) => (cutDrain = () => r(false)));
        const empty = await Promise.race([sessions.whenEmpty(graceMs), cut]);
        if (!empty) log.warn({ event: 'DRAIN_GRACE_ENDED', attributes: { 'calls.live': sessions.size } }, 'closing the calls still live');
        rooms.closeAll('the service is stopping');
        conferences.closeAll();
        await signaling.close();
        sessions.closeAll('shutdown');
        await mediaStreams.closeAll();
        // Recordings are finalized into the spool; uploads not done now resume at next start.
        await recordings.drain();
        await grpcServer.stop(STREAM_CLOSE_GRACE_MS);
        uploads.close();
        s3.destroy();
        clock.stop();
        compaction.stop();
        await prompts.close();
        workers.close();
        await events.close();
        await http.stop();
        log.info({ event: 'SERVICE_STOPPED' }, 'stopped');
      })();
      return stopping;
    },
  };
}

/** Start-up's own work is done by then (the first scrapes, the workers' first answers). */
const COMPACT_AFTER_START_MS = 1000;

/** Streams of closed calls end at once; this only bounds a client that never reads its end. */
const STREAM_CLOSE_GRACE_MS = 2000;

const WILDCARDS = ['0.0.0.0', '::', ''];

/** The address browsers are told to reach: configured, else the RTP one, else loopback. */
function webRtcListen(config: Readonly<Config>, log: Logger): WebRtcListen {
  const listenIp = config.webrtc.listen_ip || '0.0.0.0';
  let announcedIp = config.webrtc.announced_ip || config.rtp.advertised_ip || (WILDCARDS.includes(listenIp) ? '' : listenIp);
  if (!announcedIp) {
    announcedIp = '127.0.0.1';
    log.warn({ event: 'WEBRTC_ADDRESS_UNKNOWN' }, 'WEBRTC_ANNOUNCED_IP is not set: browsers are offered 127.0.0.1, so only browsers on this host can connect');
  }
  return { listenIp, announcedIp, basePort: config.webrtc.port };
}
