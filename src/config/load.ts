import convict from 'convict';
import { parse as parseDotenv } from 'dotenv';
import { parse as parseToml } from 'smol-toml';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { schema, type Config } from './schema.ts';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ConfigSources {
  /** Process environment (the last, strongest layer). */
  env: Record<string, string | undefined>;
  /** Command-line arguments after the script name; `--config FILE` names the TOML layer. */
  argv?: readonly string[];
  /** Directory where `config.toml` and `.env` are looked for by default. */
  cwd: string;
}

export interface LoadedConfig {
  config: Readonly<Config>;
  /** Which files took part, for the start-up log. */
  files: { toml: string | null; dotenv: string | null };
}

function argValue(argv: readonly string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

function pickFile(explicit: string | undefined, fallback: string, cwd: string, what: string): string | null {
  if (explicit) {
    const path = resolve(cwd, explicit);
    if (!existsSync(path)) throw new ConfigError(`${what} file not found: ${path}`);
    return path;
  }
  const path = resolve(cwd, fallback);
  return existsSync(path) ? path : null;
}

/**
 * Layers, weakest first: embedded defaults, a TOML file, a .env file, the process environment.
 * Any bad value stops start-up with a message naming the key.
 */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const argv = sources.argv ?? [];
  const tomlPath = pickFile(argValue(argv, '--config') ?? sources.env.CONFIG_FILE, 'config.toml', sources.cwd, 'config');
  const dotenvPath = pickFile(sources.env.ENV_FILE, '.env', sources.cwd, '.env');

  let dotenv: Record<string, string> = {};
  if (dotenvPath) dotenv = parseDotenv(readFileSync(dotenvPath));

  const env: Record<string, string> = { ...dotenv };
  for (const [k, v] of Object.entries(sources.env)) if (v !== undefined) env[k] = v;

  const c = convict<Config>(schema, { env, args: [] });
  if (tomlPath) {
    let data: unknown;
    try {
      data = parseToml(readFileSync(tomlPath, 'utf8'));
    } catch (err) {
      throw new ConfigError(`${tomlPath}: invalid TOML: ${(err as Error).message}`);
    }
    // convict re-applies the environment over loaded files, which gives the layer order.
    c.load(data as object);
  }
  try {
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const config = c.getProperties();
  checkRelations(config);
  return { config: Object.freeze(config), files: { toml: tomlPath, dotenv: dotenvPath } };
}

function checkRelations(c: Config): void {
  const fail = (key: string, why: string): never => {
    throw new ConfigError(`invalid configuration: ${key}: ${why}`);
  };
  if (c.rtp.port_min % 2 !== 0) fail('rtp.port_min', `must be even (RTP uses even ports), got ${c.rtp.port_min}`);
  if (c.rtp.port_max <= c.rtp.port_min) fail('rtp.port_max', `must be above rtp.port_min (${c.rtp.port_min}), got ${c.rtp.port_max}`);
  if (c.mediasoup.rtc_max_port <= c.mediasoup.rtc_min_port) {
    fail('mediasoup.rtc_max_port', `must be above mediasoup.rtc_min_port (${c.mediasoup.rtc_min_port})`);
  }
  if (c.rtp.port_min <= c.mediasoup.rtc_max_port && c.mediasoup.rtc_min_port <= c.rtp.port_max) {
    fail('rtp.port_min', `the RTP range ${c.rtp.port_min}-${c.rtp.port_max} overlaps mediasoup's ${c.mediasoup.rtc_min_port}-${c.mediasoup.rtc_max_port}`);
  }
  const inRange = (port: number, lo: number, hi: number): boolean => port >= lo && port <= hi;
  if (inRange(c.webrtc.port, c.mediasoup.rtc_min_port, c.mediasoup.rtc_max_port) || inRange(c.webrtc.port, c.rtp.port_min, c.rtp.port_max)) {
    fail('webrtc.port', `${c.webrtc.port} lies inside the RTP or mediasoup port range; give the WebRTC server its own ports`);
  }
  if (c.transcode.opus_complexity > 10) fail('transcode.opus_complexity', `must be 0-10, got ${c.transcode.opus_complexity}`);
  if (!c.signaling.path.startsWith('/')) fail('signaling.path', `must start with /, got ${c.signaling.path}`);
  const pt = c.rtp.telephone_event_payload_type;
  if (pt < 96 || pt > 127) fail('rtp.telephone_event_payload_type', `must be a dynamic payload type (96-127), got ${pt}`);
  const tls = [c.grpc.cert_path, c.grpc.key_path, c.grpc.ca_path];
  const set = tls.filter((p) => p !== '').length;
  if (set !== 0 && set !== 3) {
    fail('grpc.cert_path', 'mTLS needs cert_path, key_path and ca_path together (MEDIA_SERVICE_CERT_PATH, MEDIA_SERVICE_KEY_PATH, GRPC_TLS_CA_PATH)');
  }
  for (const p of tls) if (p && !existsSync(p)) fail('grpc', `file not found: ${p}`);
}
