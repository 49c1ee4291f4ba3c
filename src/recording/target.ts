import { isAbsolute, relative, resolve, sep } from 'node:path';
import { invalidArgument } from '../errors/media-error.ts';

export type RecordingFormat = 'wav' | 'mp3';
export type ChannelLayout = 'stereo' | 'mono';

/** Where a finished recording goes. */
export type RecordingDestination = { kind: 'file'; path: string } | { kind: 's3'; bucket: string; key: string };

export const RECORDING_RATES = [8000, 16000, 24000, 32000, 44100, 48000] as const;

const BUCKET_NAME = /^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

function datedName(prefix: string, callId: string, ext: string, now: Date): string {
  const y = now.getUTCFullYear();
  const m = String(now.getUTCMonth() + 1).padStart(2, '0');
  const d = String(now.getUTCDate()).padStart(2, '0');
  // A call id is the SIP Call-ID: keep it readable but never let it make a path.
  const safe = callId.replace(/[^A-Za-z0-9._@-]/g, '_').replace(/^\.+/, '_') || 'call';
  return `${prefix ? `${prefix}/` : ''}${y}/${m}/${d}/${safe}.${ext}`;
}

/**
 * `file:///dir/` or `file:///dir/name.ext` under the recordings root; `s3://bucket/prefix`
 * or `s3://bucket/key.ext`. A prefix gets `<prefix>/YYYY/MM/DD/<call_id>.<ext>`.
 */
export function parseRecordingUri(uri: string, opts: { fileRoot: string; callId: string; format: RecordingFormat; now?: Date }): RecordingDestination {
  const now = opts.now ?? new Date();
  const ext = opts.format;
  const lower = uri.toLowerCase();
  if (lower.startsWith('s3://')) {
    const rest = uri.slice(5);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const path = (slash < 0 ? '' : rest.slice(slash + 1)).replace(/^\/+|\/+$/g, '');
    if (!BUCKET_NAME.test(bucket)) throw invalidArgument(`output_uri names an invalid S3 bucket ${JSON.stringify(bucket)}`);
    if (path.split('/').some((p) => p === '..' || p === '.')) throw invalidArgument('output_uri key must not contain . or .. segments');
    const explicit = /\.(wav|mp3)$/i.exec(path);
    if (explicit && explicit[1]!.toLowerCase() !== ext) throw invalidArgument(`output_uri ends in .${explicit[1]} but the format is ${ext}`);
    return { kind: 's3', bucket, key: explicit ? path : datedName(path, opts.callId, ext, now) };
  }
  if (lower.startsWith('file://')) {
    let path: string;
    try {
      path = decodeURIComponent(uri.slice(7));
    } catch {
      throw invalidArgument('output_uri is not a valid file:// URI');
    }
    const root = resolve(opts.fileRoot);
    const isDir = path.endsWith('/') || !/\.(wav|mp3)$/i.test(path);
    const explicit = /\.(wav|mp3)$/i.exec(path);
    if (explicit && explicit[1]!.toLowerCase() !== ext) throw invalidArgument(`output_uri ends in .${explicit[1]} but the format is ${ext}`);
    const rel = path.replace(/^\/+/, '');
    const base = isAbsolute(path) && within(root, resolve(path)) ? resolve(path) : resolve(root, rel);
    const full = isDir ? resolve(base, datedName('', opts.callId, ext, now)) : base;
    if (!within(root, full) || full === root) throw invalidArgument('output_uri points outside the recordings directory');
    return { kind: 'file', path: full };
  }
  throw invalidArgument('output_uri must be file:// or s3://');
}

function within(root: string, path: string): boolean {
  const r = relative(root, path);
  return r === '' || (!r.startsWith(`..${sep}`) && r !== '..' && !isAbsolute(r));
}

export function describeDestination(d: RecordingDestination): string {
  return d.kind === 's3' ? `s3://${d.bucket}/${d.key}` : `file://${d.path}`;
}
