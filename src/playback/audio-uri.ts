import { invalidArgument } from '../errors/media-error.ts';

/** What a PlayAudio `audio_uri` asks for, parsed and checked at the edge. */
export type AudioUri =
  | { kind: 'control'; action: ControlAction }
  | { kind: 'file'; path: string }
  | { kind: 'data'; mediaType: string; params: Record<string, string>; bytes: Buffer }
  | { kind: 'http'; url: string };

export const CONTROL_ACTIONS = ['set_target', 'enable_echo', 'disable_echo', 'stop_playback'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** `control://flush` is the same barge-in as `stop_playback`. */
const CONTROL_ALIASES: Record<string, ControlAction> = { flush: 'stop_playback' };

export function parseAudioUri(uri: string, opts: { maxDataBytes: number }): AudioUri {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase();
  switch (scheme) {
    case 'control': {
      const name = uri.slice('control://'.length).replace(/\/+$/, '');
      const action = (CONTROL_ACTIONS as readonly string[]).includes(name) ? (name as ControlAction) : CONTROL_ALIASES[name];
      if (!uri.toLowerCase().startsWith('control://') || !action) {
        throw invalidArgument(`unknown control URI ${JSON.stringify(uri.slice(0, 64))}; known: ${CONTROL_ACTIONS.map((a) => `control://${a}`).join(', ')}`);
      }
      return { kind: 'control', action };
    }
    case 'file': {
      // Taken literally after the scheme: platforms send both file:///a/b.wav and
      // file://a/b.wav, and both mean a path under the assets root.
      let path: string;
      try {
        path = decodeURIComponent(uri.slice('file://'.length).split(/[?#]/)[0] ?? '');
      } catch {
        throw invalidArgument('audio_uri is not a valid file:// URI');
      }
      if (!uri.toLowerCase().startsWith('file://') || path.replace(/^\/+/, '') === '') throw invalidArgument('file:// URI names no file');
      if (path.includes('\0')) throw invalidArgument('file:// URI contains a NUL byte');
      return { kind: 'file', path };
    }
    case 'data':
      return parseDataUri(uri, opts.maxDataBytes);
    case 'http':
    case 'https':
      return { kind: 'http', url: uri };
    default:
      throw invalidArgument(`unsupported audio_uri scheme ${JSON.stringify(scheme ?? uri.slice(0, 16))}: use file://, data:, http(s):// or control://`);
  }
}

function parseDataUri(uri: string, maxBytes: number): AudioUri {
  const comma = uri.indexOf(',');
  if (comma < 0) throw invalidArgument('data: URI has no comma before its data');
  const meta = uri.slice(5, comma).split(';').map((s) => s.trim());
  const mediaType = (meta[0] || 'text/plain').toLowerCase();
  const base64 = meta.includes('base64');
  const params: Record<string, string> = {};
  for (const m of meta.slice(1)) {
    const eq = m.indexOf('=');
    if (eq > 0) params[m.slice(0, eq).toLowerCase()] = m.slice(eq + 1);
  }
  if (!base64) throw invalidArgument('data: URIs must be base64-encoded (data:audio/...;base64,...)');
  const encodedLength = uri.length - comma - 1;
  if (encodedLength * 0.75 > maxBytes) throw invalidArgument(`data: URI larger than ${maxBytes} bytes`);
  if (!mediaType.startsWith('audio/')) throw invalidArgument(`data: URI media type ${mediaType} is not audio`);
  const bytes = Buffer.from(uri.slice(comma + 1), 'base64');
  if (bytes.length === 0) throw invalidArgument('data: URI carries no audio');
  return { kind: 'data', mediaType, params, bytes };
}

/** `ip:port` or `[ipv6]:port` from rtp_target_addr. */
export function parseTargetAddr(value: string): { address: string; port: number } {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(value) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || !(port > 0 && port < 65536)) throw invalidArgument(`rtp_target_addr must be ip:port, got ${JSON.stringify(value.slice(0, 64))}`);
  if (m[1]!.includes('.') && m[1]!.split('.').some((o) => Number(o) > 255)) throw invalidArgument(`rtp_target_addr has an invalid IPv4 address: ${m[1]}`);
  return { address: m[1]!, port };
}

/** A short, log-safe form of a URI (data: URIs can be megabytes). */
export function describeUri(uri: string): string {
  if (uri.startsWith('data:')) {
    const comma = uri.indexOf(',');
    return `${uri.slice(0, Math.min(comma < 0 ? 48 : comma, 48))},…(${uri.length} chars)`;
  }
  return uri.length > 256 ? `${uri.slice(0, 256)}…` : uri;
}
