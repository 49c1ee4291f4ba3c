import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';
import type PinoPretty from 'pino-pretty';
import { createRequire } from 'node:module';
import { hostname } from 'node:os';
import type { Config } from '../config/schema.ts';
import { boundExitFlush } from './exit-flush.ts';

export type { Logger };

/** Identity that every line of one request or call carries. */
export interface LogContext {
  trace_id: string | null;
  call_id: string | null;
  span_id?: string | null;
  tenant_id?: string;
}

export interface Logging {
  /** Lines about the process itself: trace_id and call_id are null. */
  readonly process: Logger;
  /** A logger whose every line carries this context. */
  forContext(ctx: LogContext): Logger;
  /** Lines dropped because stdout was not read fast enough (see createLogging). */
  droppedLines(): number;
}

export interface LoggingOptions {
  config: Pick<Config, 'service' | 'log'>;
  version: string;
  /** Where lines go (defaults to stdout); tests pass a stream. */
  destination?: DestinationStream;
  /** The media shard this process is, when the instance runs several. */
  shard?: number;
  /** The front-door process this is, when the instance runs them. */
  frontDoor?: number;
}

const SCHEMA_VERSION = '1.0.0';

export function createLogging(opts: LoggingOptions): Logging {
  const { service, log } = opts.config;
  const json = log.format === 'json' || (log.format === 'auto' && service.env === 'production');
  const options: LoggerOptions = {
    level: log.level,
    messageKey: 'message',
    errorKey: 'error',
    timestamp: () => `,"timestamp":"${new Date().toISOString()}"`,
    formatters: { level: (label) => ({ level: label }) },
    base: {
      schema_v: SCHEMA_VERSION,
      service: service.name,
      resource: {
        'service.name': service.name,
        'service.version': opts.version,
        'service.env': service.env,
        'host.name': hostname(),
        ...(opts.shard !== undefined ? { 'service.shard': opts.shard } : {}),
        ...(opts.frontDoor !== undefined ? { 'service.front_door': opts.frontDoor } : {}),
      },
    },
  };
  const destination =
    opts.destination ??
    (json
      ? // Asynchronous: a slow reader of stdout (a full pipe, a stalled log shipper) must never
        // put the media clock to sleep, as a synchronous write waiting out EAGAIN does. Lines
        // are kept in order; past 16 MB waiting they are dropped and counted, and what is
        // waiting is written out synchronously when the process exits.
        pino.destination({ dest: 1, sync: false, minLength: 0, maxLength: 16 * 1024 * 1024 })
      : prettyPrinter()({ colorize: true, singleLine: true, messageKey: 'message', timestampKey: 'timestamp', ignore: 'pid,hostname,schema_v,resource,tenant_id,service' }));
  let dropped = 0;
  if (json && !opts.destination) {
    const boom = destination as DestinationStream & { on(e: 'drop' | 'error', l: () => void): void };
    boom.on('drop', () => dropped++);
    // stdout's reader gone for good (EPIPE): the service goes on without its log lines rather
    // than die of an uncaught stream error; they wait, then are dropped and counted, as above.
    boom.on('error', () => {});
    boundExitFlush(boom);
  }
  const root = pino(options, destination);
  // The root logger is never handed out: every line goes through a child that already
  // carries trace_id/call_id/tenant_id (pino writes a key bound twice twice), so no key is
  // written twice on one line.
  const processLogger = root.child({ trace_id: null, call_id: null, tenant_id: service.tenant_id });
  return {
    process: processLogger,
    forContext(ctx: LogContext): Logger {
      const bindings: Record<string, unknown> = { trace_id: ctx.trace_id, call_id: ctx.call_id, tenant_id: ctx.tenant_id ?? service.tenant_id };
      if (ctx.span_id) bindings.span_id = ctx.span_id;
      return root.child(bindings);
    },
    droppedLines: () => dropped,
  };
}

/**
 * Node prints its own warnings (deprecations, listener leaks) as plain text on stderr, which
 * breaks one JSON object per line: they become log lines instead. Warnings raised before
 * the logger exists are held and written once it does.
 */
export function holdProcessWarnings(): (log: Logger) => void {
  let log: Logger | null = null;
  const held: Error[] = [];
  const write = (w: Error): void => {
    const code = (w as Error & { code?: unknown }).code;
    log!.warn({ event: 'NODE_WARNING', attributes: { 'warning.name': w.name, ...(code ? { 'warning.code': String(code) } : {}) } }, w.message);
  };
  process.removeAllListeners('warning');
  process.on('warning', (w) => (log ? write(w) : held.push(w)));
  return (l) => {
    log = l;
    for (const w of held.splice(0)) write(w);
  };
}

/** pino-pretty and its dependencies load only where lines are written for people, never in production. */
function prettyPrinter(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}
