import convict from 'convict';
import { compileCidrs } from '../media-streams/destination.ts';

export type ServiceEnv = 'development' | 'production' | 'test';
export type LogFormat = 'auto' | 'json' | 'pretty';
export type WorkerLogLevel = 'debug' | 'warn' | 'error' | 'none';

export interface Config {
  service: { name: string; env: ServiceEnv; tenant_id: string };
  grpc: {
    listen_address: string;
    port: number;
    cert_path: string;
    key_path: string;
    ca_path: string;
    shutdown_grace_seconds: number;
  };
  http: { listen_address: string; port: number };
  rtp: {
    port_min: number;
    port_max: number;
    quarantine_seconds: number;
    inactivity_timeout_seconds: number;
    listen_address: string;
    advertised_ip: string;
    telephone_event_payload_type: number;
    source_policy: 'strict' | 'latch';
    source_learning_ms: number;
    quality_degraded_mos: number;
    quality_degraded_loss_ratio: number;
    quality_degraded_jitter_ms: number;
    priority: number;
    wake_window_ms: number;
  };
  playback: {
    cache_max_bytes: number;
    max_prompt_seconds: number;
    data_uri_max_bytes: number;
    decode_timeout_ms: number;
    decoder_idle_seconds: number;
    http_enabled: boolean;
    http_max_bytes: number;
    http_timeout_ms: number;
  };
  mediasoup: {
    num_workers: number;
    worker_bin: string;
    log_level: WorkerLogLevel;
    rtc_min_port: number;
    rtc_max_port: number;
  };
  webrtc: { listen_ip: string; announced_ip: string; port: number };
  /** demo_enabled: `auto` is on unless service.env is production; TOML may also write a boolean. */
  signaling: { path: string; token_secret: string; max_token_ttl_seconds: number; demo_enabled: 'auto' | 'true' | 'false' | boolean; max_peers_per_room: number };
  transcode: { opus_complexity: number; opus_bitrate: number };
  assets: { base_path: string };
  inject: { idle_timeout_seconds: number; max_buffer_ms: number };
  media_streams: {
    allowed_hosts: string[];
    allowed_cidrs: string[];
    path: string;
    max_per_call: number;
    connect_timeout_ms: number;
    max_message_bytes: number;
    max_token_ttl_seconds: number;
  };
  conference: {
    max_conferences: number;
    max_participants: number;
    talk_threshold_dbfs: number;
    talk_hold_ms: number;
    join_tone_uri: string;
    leave_tone_uri: string;
  };
  recording: { spool_dir: string; file_root: string; upload_concurrency: number; max_backoff_seconds: number; permanent_failure_attempts: number; transcode_concurrency: number };
  bucket: {
    endpoint_url: string;
    region: string;
    access_key_id: string;
    secret_access_key: string;
    name: string;
    force_path_style: boolean;
  };
  events: { rabbitmq_url: string; exchange: string };
  log: { level: string; format: LogFormat };
  cluster: {
    /** `auto`: one shard per core; 1: one process carries everything. */
    shards: string;
    /** `auto` or 0: none, the shards take the client connections. */
    front_doors: string;
    hang_timeout_seconds: number;
    max_cpu: number;
    max_loop_lag_ms: number;
    max_sessions: number;
    redis_url: string;
    instance_id: string;
    advertise_address: string;
    instance_ttl_seconds: number;
  };
}

const nonEmpty = {
  name: 'non-empty-string',
  validate(value: unknown): void {
    if (typeof value !== 'string' || value.trim() === '') throw new Error('must be a non-empty string');
  },
};

const ipOrEmpty = {
  name: 'ip-or-empty',
  validate(value: unknown): void {
    if (value === '') return;
    if (typeof value !== 'string' || !/^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/.test(value)) {
      throw new Error('must be an IPv4/IPv6 address or empty');
    }
  },
};

/** `auto` or a whole number in [min, max], kept as a string (the owner resolves `auto`). */
const autoOrCount = (name: string, min: number, max: number) => ({
  name,
  validate(value: unknown): void {
    if (value === 'auto') return;
    const n = typeof value === 'string' || typeof value === 'number' ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new Error(`must be auto or a whole number from ${min} to ${max}`);
  },
  coerce: (v: unknown): string => String(v),
});

const shardCount = autoOrCount('shard-count', 1, 64);
const frontDoorCount = autoOrCount('front-door-count', 0, 16);

const nice = {
  name: 'nice',
  validate(value: unknown): void {
    if (!Number.isInteger(value) || (value as number) < -20 || (value as number) > 19) throw new Error('must be a whole number from -20 to 19');
  },
  coerce: (v: unknown): number => Number(v),
};

const wakeWindow = {
  name: 'wake-window',
  validate(value: unknown): void {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 5) throw new Error('must be a number of milliseconds from 0 to 5');
  },
  coerce: (v: unknown): number => Number(v),
};

const cidrList = {
  name: 'cidr-list',
  validate(value: unknown): void {
    if (!Array.isArray(value)) throw new Error('must be a list of address ranges');
    compileCidrs((value as string[]).filter((v) => v.trim() !== ''));
  },
  coerce: (v: unknown): string[] => (Array.isArray(v) ? (v as string[]) : String(v).split(',')).map((x) => x.trim()).filter((x) => x !== ''),
};

convict.addFormats({ 'non-empty-string': nonEmpty, 'ip-or-empty': ipOrEmpty, 'shard-count': shardCount, 'front-door-count': frontDoorCount, 'cidr-list': cidrList, nice, 'wake-window': wakeWindow });

// Every key documented here is also documented, with the same default, in config.default.toml.
export const schema: convict.Schema<Config> = {
  service: {
    name: { doc: 'Service name in logs and metrics', format: 'non-empty-string', default: 'media-service', env: 'SERVICE_NAME' },
    env: { doc: 'Deployment environment', format: ['development', 'production', 'test'], default: 'development', env: 'ENV' },
    tenant_id: { doc: 'Tenant id carried in logs and events', format: String, default: 'default', env: 'TENANT_ID' },
  },
  grpc: {
    listen_address: { doc: 'gRPC listen address', format: 'non-empty-string', default: '0.0.0.0', env: 'MEDIA_SERVICE_GRPC_LISTEN_ADDRESS' },
    port: { doc: 'gRPC port (0 picks a free port)', format: 'port', default: 13031, env: 'MEDIA_SERVICE_GRPC_PORT' },
    cert_path: { doc: 'Server certificate (PEM); with key and CA enables mTLS', format: String, default: '', env: 'MEDIA_SERVICE_CERT_PATH' },
    key_path: { doc: 'Server private key (PEM)', format: String, default: '', env: 'MEDIA_SERVICE_KEY_PATH' },
    ca_path: { doc: 'CA that signs client certificates (PEM)', format: String, default: '', env: 'GRPC_TLS_CA_PATH' },
    shutdown_grace_seconds: { doc: 'How long SIGTERM lets live calls (and their RPCs) finish before closing them; a second signal does not wait', format: 'nat', default: 10, env: 'MEDIA_SERVICE_SHUTDOWN_GRACE_SECONDS' },
  },
  http: {
    listen_address: { doc: 'Metrics/health HTTP listen address', format: 'non-empty-string', default: '0.0.0.0', env: 'MEDIA_SERVICE_METRICS_LISTEN_ADDRESS' },
    port: { doc: 'Metrics/health HTTP port (0 picks a free port)', format: 'port', default: 13032, env: 'MEDIA_SERVICE_METRICS_PORT' },
  },
  rtp: {
    port_min: { doc: 'Lowest RTP port handed out (even)', format: 'port', default: 10000, env: 'RTP_SERVICE_PORT_MIN' },
    port_max: { doc: 'Highest RTP port handed out', format: 'port', default: 20000, env: 'RTP_SERVICE_PORT_MAX' },
    quarantine_seconds: { doc: 'Seconds a released port rests before reuse', format: 'nat', default: 5, env: 'RTP_SERVICE_PORT_QUARANTINE_SECONDS' },
    inactivity_timeout_seconds: { doc: 'Close a session after this long without inbound RTP (0 disables)', format: 'nat', default: 30, env: 'RTP_SESSION_INACTIVITY_TIMEOUT_SECONDS' },
    listen_address: { doc: 'Address RTP sockets bind to', format: 'ip-or-empty', default: '0.0.0.0', env: 'RTP_SERVICE_LISTEN_ADDRESS' },
    advertised_ip: { doc: 'Address announced to peers (empty: the listen address)', format: 'ip-or-empty', default: '', env: 'RTP_SERVICE_ADVERTISED_IP' },
    telephone_event_payload_type: { doc: 'RTP payload type of RFC 4733 DTMF events', format: 'int', default: 101, env: 'RTP_TELEPHONE_EVENT_PAYLOAD_TYPE' },
    source_policy: {
      doc: 'strict: the phone\'s source is learned from its first packets, then locked; another source is taken only with SRTP authentication, the same SSRC continuing, or after set_target. latch: any source replaces one silent for 1 s (unsafe on untrusted networks)',
      format: ['strict', 'latch'],
      default: 'strict',
      env: 'RTP_SOURCE_POLICY',
    },
    source_learning_ms: { doc: 'After the first packet or a set_target, how long a packet from the signalled address may still replace a learned source', format: 'nat', default: 3000, env: 'RTP_SOURCE_LEARNING_MS' },
    quality_degraded_mos: { doc: 'A call whose MOS estimate falls below this is reported once as degraded (call.media.quality.degraded; 0: never)', format: Number, default: 3.6, env: 'QUALITY_DEGRADED_MOS' },
    quality_degraded_loss_ratio: { doc: "...or whose phone's loss rises above this share of packets (0: never)", format: Number, default: 0.03, env: 'QUALITY_DEGRADED_LOSS_RATIO' },
    quality_degraded_jitter_ms: { doc: "...or whose phone's interarrival jitter rises above this (0: never)", format: Number, default: 50, env: 'QUALITY_DEGRADED_JITTER_MS' },
    priority: {
      doc: 'Nice value (-20 to 19, lower runs first) of each media process (0: as inherited). Below 0, its 20 ms clock does not wait behind other work on a shared machine, at the price of being woken for every packet instead of every few: more CPU per call. Below 0 needs CAP_SYS_NICE or RLIMIT_NICE; when refused, the service says so and runs as inherited',
      format: 'nice',
      default: 0,
      env: 'MEDIA_PRIORITY',
    },
    wake_window_ms: {
      doc: 'After a loop turn that handled RTP, the media loop naps for the rest of this window since its first packet, so packets arriving meanwhile are handled together instead of each waking the loop (at most this much added delay; 0: never nap)',
      format: 'wake-window',
      default: 1,
      env: 'MEDIA_WAKE_WINDOW_MS',
    },
  },
  playback: {
    cache_max_bytes: { doc: 'Decoded prompts kept in memory (bytes)', format: 'nat', default: 67108864, env: 'PLAYBACK_CACHE_MAX_BYTES' },
    max_prompt_seconds: { doc: 'Longest prompt accepted', format: 'nat', default: 600, env: 'PLAYBACK_MAX_PROMPT_SECONDS' },
    data_uri_max_bytes: { doc: 'Largest audio carried in a data: URI (decoded bytes)', format: 'nat', default: 8388608, env: 'PLAYBACK_DATA_URI_MAX_BYTES' },
    decode_timeout_ms: { doc: 'Longest time to decode one prompt', format: 'nat', default: 10000, env: 'PLAYBACK_DECODE_TIMEOUT_MS' },
    decoder_idle_seconds: {
      doc: 'The prompt decoding thread (about 50 MB) starts with the first prompt to decode and stops after this long without one',
      format: 'nat',
      default: 60,
      env: 'PLAYBACK_DECODER_IDLE_SECONDS',
    },
    http_enabled: { doc: 'Allow http(s):// prompt URIs', format: Boolean, default: false, env: 'PLAYBACK_HTTP_ENABLED' },
    http_max_bytes: { doc: 'Largest prompt fetched over http(s)', format: 'nat', default: 20971520, env: 'PLAYBACK_HTTP_MAX_BYTES' },
    http_timeout_ms: { doc: 'Time limit of one http(s) prompt fetch', format: 'nat', default: 5000, env: 'PLAYBACK_HTTP_TIMEOUT_MS' },
  },
  mediasoup: {
    num_workers: { doc: 'mediasoup workers (0: one per core)', format: 'nat', default: 0, env: 'MEDIASOUP_NUM_WORKERS' },
    worker_bin: { doc: 'mediasoup-worker binary (empty: the one set up by scripts/setup.sh)', format: String, default: '', env: 'MEDIASOUP_WORKER_BIN' },
    log_level: { doc: 'mediasoup worker log level', format: ['debug', 'warn', 'error', 'none'], default: 'warn', env: 'MEDIASOUP_LOG_LEVEL' },
    rtc_min_port: { doc: 'Lowest UDP/TCP port of mediasoup transports', format: 'port', default: 40000, env: 'MEDIASOUP_RTC_MIN_PORT' },
    rtc_max_port: { doc: 'Highest UDP/TCP port of mediasoup transports', format: 'port', default: 49999, env: 'MEDIASOUP_RTC_MAX_PORT' },
  },
  webrtc: {
    listen_ip: { doc: 'Address the WebRTC server binds (UDP and TCP)', format: 'ip-or-empty', default: '0.0.0.0', env: 'WEBRTC_LISTEN_IP' },
    announced_ip: { doc: 'Address put in ICE candidates (empty: RTP_SERVICE_ADVERTISED_IP, else the listen address, else 127.0.0.1)', format: 'ip-or-empty', default: '', env: 'WEBRTC_ANNOUNCED_IP' },
    port: { doc: 'UDP and TCP port of the WebRTC server of worker 0; worker i listens on port + i', format: 'port', default: 39000, env: 'WEBRTC_PORT' },
  },
  signaling: {
    path: { doc: 'socket.io path on the HTTP port', format: 'non-empty-string', default: '/signaling', env: 'SIGNALING_PATH' },
    token_secret: { doc: 'HMAC secret of room tokens (empty: a random one per process; tokens then die with it)', format: String, default: '', env: 'SIGNALING_TOKEN_SECRET', sensitive: true },
    max_token_ttl_seconds: { doc: 'Longest lifetime of a room token', format: 'nat', default: 86400, env: 'SIGNALING_MAX_TOKEN_TTL_SECONDS' },
    demo_enabled: {
      doc: 'Serve the web demo at / and issue tokens to anyone at /demo/token (never for a call): auto (on unless service.env is production), true or false',
      format: ['auto', 'true', 'false', true, false],
      default: 'auto',
      env: 'SIGNALING_DEMO_ENABLED',
    },
    max_peers_per_room: { doc: 'Browsers allowed in one room', format: 'nat', default: 16, env: 'SIGNALING_MAX_PEERS_PER_ROOM' },
  },
  transcode: {
    opus_complexity: { doc: 'Opus encoder complexity 0-10 for audio that came from G.711 (0: narrowband speech loses nothing measurable, at half the cost of 5)', format: 'nat', default: 0, env: 'TRANSCODE_OPUS_COMPLEXITY' },
    opus_bitrate: { doc: 'Opus bitrate of audio that comes from G.711 (bit/s)', format: 'nat', default: 24000, env: 'TRANSCODE_OPUS_BITRATE' },
  },
  assets: {
    base_path: { doc: 'Root that file:// prompt URIs resolve under', format: String, default: './assets', env: 'ASSETS_BASE_PATH' },
  },
  inject: {
    idle_timeout_seconds: { doc: 'An injection stream with no message for this long is ended', format: 'nat', default: 20, env: 'INJECT_IDLE_TIMEOUT_SECONDS' },
    max_buffer_ms: { doc: 'Audio a client may queue ahead of real time before its stream is paused', format: 'nat', default: 30000, env: 'INJECT_MAX_BUFFER_MS' },
  },
  conference: {
    max_conferences: { doc: 'Conferences one process holds at once', format: 'nat', default: 200, env: 'CONFERENCE_MAX' },
    max_participants: { doc: 'Largest conference (CreateConference may ask for fewer)', format: 'nat', default: 100, env: 'CONFERENCE_MAX_PARTICIPANTS' },
    talk_threshold_dbfs: { doc: 'Level (dBFS, mean square over 20 ms) a participant reaches to count as talking, and to be mixed', format: Number, default: -45, env: 'CONFERENCE_TALK_THRESHOLD_DBFS' },
    talk_hold_ms: { doc: 'Talking lasts this long after the last frame above the threshold', format: 'nat', default: 500, env: 'CONFERENCE_TALK_HOLD_MS' },
    join_tone_uri: { doc: 'Prompt the whole conference hears when someone joins (empty: none)', format: String, default: '', env: 'CONFERENCE_JOIN_TONE_URI' },
    leave_tone_uri: { doc: 'Prompt the whole conference hears when someone leaves (empty: none)', format: String, default: '', env: 'CONFERENCE_LEAVE_TONE_URI' },
  },
  media_streams: {
    allowed_hosts: {
      doc: 'Hosts a WebSocket media stream may dial (name, *.suffix, or * for any public host); empty: streams cannot dial out',
      format: Array,
      default: [],
      env: 'MEDIA_STREAM_ALLOWED_HOSTS',
    },
    allowed_cidrs: {
      doc: 'Address ranges a media stream may dial; a private, loopback or link-local address is dialled only when a range here names it',
      format: 'cidr-list',
      default: [],
      env: 'MEDIA_STREAM_ALLOWED_CIDRS',
    },
    path: { doc: 'HTTP path where backends connect in to a call with a media stream token', format: 'non-empty-string', default: '/media-stream', env: 'MEDIA_STREAM_PATH' },
    max_per_call: { doc: 'Media streams one call may run at once', format: 'nat', default: 4, env: 'MEDIA_STREAM_MAX_PER_CALL' },
    connect_timeout_ms: { doc: 'How long dialling a backend may take (DNS, TCP, TLS, WebSocket handshake)', format: 'nat', default: 5000, env: 'MEDIA_STREAM_CONNECT_TIMEOUT_MS' },
    max_message_bytes: { doc: 'Largest message a backend may send', format: 'nat', default: 1048576, env: 'MEDIA_STREAM_MAX_MESSAGE_BYTES' },
    max_token_ttl_seconds: { doc: 'Longest lifetime of a media stream token (backends connecting in)', format: 'nat', default: 3600, env: 'MEDIA_STREAM_MAX_TOKEN_TTL_SECONDS' },
  },
  recording: {
    spool_dir: { doc: 'Local directory where recordings are written while calls run (keep it on persistent disk)', format: 'non-empty-string', default: './var/spool/recordings', env: 'RECORDING_SPOOL_DIR' },
    file_root: { doc: 'Root that file:// recording URIs resolve under', format: 'non-empty-string', default: './var/recordings', env: 'RECORDING_FILE_ROOT' },
    upload_concurrency: { doc: 'Recordings uploaded at once', format: 'nat', default: 4, env: 'RECORDING_UPLOAD_CONCURRENCY' },
    max_backoff_seconds: { doc: 'Longest wait between two upload attempts of one recording', format: 'nat', default: 60, env: 'RECORDING_MAX_BACKOFF_SECONDS' },
    permanent_failure_attempts: {
      doc: 'Permanent refusals (no such bucket, access denied, other 4xx) after which a recording is kept in the spool as failed and tried once per start; 0 retries them forever',
      format: 'nat',
      default: 3,
      env: 'RECORDING_PERMANENT_FAILURE_ATTEMPTS',
    },
    transcode_concurrency: { doc: 'MP3 encodes run at once (low CPU priority)', format: 'nat', default: 1, env: 'RECORDING_TRANSCODE_CONCURRENCY' },
  },
  bucket: {
    endpoint_url: { doc: 'S3 endpoint (empty: AWS)', format: String, default: '', env: 'BUCKET_ENDPOINT_URL' },
    region: { doc: 'S3 region', format: String, default: 'us-east-1', env: 'BUCKET_REGION' },
    access_key_id: { doc: 'S3 access key id', format: String, default: '', env: 'BUCKET_ACCESS_KEY_ID', sensitive: true },
    secret_access_key: { doc: 'S3 secret access key', format: String, default: '', env: 'BUCKET_SECRET_ACCESS_KEY', sensitive: true },
    name: { doc: 'Default bucket', format: String, default: '', env: 'BUCKET_NAME' },
    force_path_style: { doc: 'Path-style addressing for S3-compatible servers', format: Boolean, default: false, env: 'BUCKET_FORCE_PATH_STYLE' },
  },
  events: {
    rabbitmq_url: { doc: 'RabbitMQ URL (empty: events are only logged)', format: String, default: '', env: 'RABBITMQ_URL', sensitive: true },
    exchange: { doc: 'Durable topic exchange for platform events', format: 'non-empty-string', default: 'sentiric_events', env: 'RABBITMQ_EXCHANGE' },
  },
  cluster: {
    shards: {
      doc: 'Media shards (processes, each with its own event loop, slice of the RTP range, WebRTC ports, workers and spool) behind the one gRPC and HTTP address: auto (one per core) or a number; 1 runs everything in one process',
      format: 'shard-count',
      default: 'auto',
      env: 'MEDIA_SHARDS',
    },
    front_doors: {
      doc: 'Processes that take the client connections of the one gRPC address and relay every request to its shard, keeping relaying off the shards (auto or 0: none; the shards take the connections, each serving its own calls’ requests directly and relaying the rest)',
      format: 'front-door-count',
      default: 'auto',
      env: 'MEDIA_FRONT_DOORS',
    },
    hang_timeout_seconds: {
      doc: 'A shard or front door not heard from for this long while it runs is stuck: it is killed and started again, as after a crash (0: never)',
      format: 'nat',
      default: 5,
      env: 'MEDIA_HANG_TIMEOUT_SECONDS',
    },
    max_cpu: { doc: 'A shard above this CPU (1 = one core) takes no new calls (0: no limit)', format: Number, default: 0.85, env: 'ADMISSION_MAX_CPU' },
    max_loop_lag_ms: { doc: 'A shard whose event-loop delay p95 (over the last half second) is above this takes no new calls (0: no limit)', format: 'nat', default: 40, env: 'ADMISSION_MAX_LOOP_LAG_MS' },
    max_sessions: { doc: 'A shard holding this many calls takes no new ones (0: no limit)', format: 'nat', default: 0, env: 'ADMISSION_MAX_SESSIONS' },
    redis_url: { doc: 'Redis of the instances that serve one platform (empty: this instance alone)', format: String, default: '', env: 'REDIS_URL', sensitive: true },
    instance_id: { doc: 'This instance’s name among them (empty: host name and gRPC port)', format: String, default: '', env: 'INSTANCE_ID' },
    advertise_address: { doc: 'Host other instances reach this one’s gRPC port at (empty: rtp.advertised_ip, else 127.0.0.1)', format: String, default: '', env: 'CLUSTER_ADVERTISE_ADDRESS' },
    instance_ttl_seconds: { doc: 'An instance not heard of for this long is gone: its calls are reported lost', format: 'nat', default: 10, env: 'INSTANCE_TTL_SECONDS' },
  },
  log: {
    level: { doc: 'Log level', format: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], default: 'info', env: 'LOG_LEVEL' },
    format: { doc: 'auto: JSON in production, coloured lines otherwise', format: ['auto', 'json', 'pretty'], default: 'auto', env: 'LOG_FORMAT' },
  },
};
