import * as grpc from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import type { Logger, Logging } from '../logging/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { MediaError } from '../errors/media-error.ts';
import { statusName, toGrpcStatus } from './status.ts';

export interface RpcDeps {
  logging: Logging;
  metrics: Metrics;
}

/** What every handler gets: the request's identity, a logger that carries it, cancellation. */
export interface RpcContext {
  readonly method: string;
  readonly traceId: string;
  readonly spanId: string | null;
  readonly tenantId: string | null;
  readonly signal: AbortSignal;
  /** Carries trace_id and call_id (null until the call is known). */
  readonly log: Logger;
  /** Once the call is known, every later line of this request carries its id (and its tenant). */
  bindCall(callId: string | undefined, tenantId?: string): void;
}

const TRACE_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;

function firstString(md: grpc.Metadata, key: string): string | null {
  const v = md.get(key)[0];
  if (typeof v !== 'string' || !TRACE_ID_PATTERN.test(v)) return null;
  return v;
}

class Context implements RpcContext {
  readonly method: string;
  readonly traceId: string;
  readonly spanId: string | null;
  readonly tenantId: string | null;
  readonly #abort = new AbortController();
  readonly #logging: Logging;
  log: Logger;

  constructor(logging: Logging, method: string, md: grpc.Metadata) {
    this.method = method;
    this.#logging = logging;
    this.traceId = firstString(md, 'x-trace-id') ?? randomUUID();
    this.spanId = firstString(md, 'x-span-id');
    this.tenantId = firstString(md, 'x-tenant-id');
    this.log = logging.forContext({ trace_id: this.traceId, call_id: null, span_id: this.spanId, ...(this.tenantId ? { tenant_id: this.tenantId } : {}) });
  }

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  bindCall(callId: string | undefined, tenantId?: string): void {
    if (!callId) return;
    const tenant = tenantId ?? this.tenantId;
    this.log = this.#logging.forContext({ trace_id: this.traceId, call_id: callId, span_id: this.spanId, ...(tenant ? { tenant_id: tenant } : {}) });
  }

  cancel(): void {
    this.#abort.abort(new Error('cancelled by the client'));
  }

  responseMetadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('x-trace-id', this.traceId);
    return md;
  }
}

interface Spec<Req> {
  method: string;
  schema: z.ZodType<Req>;
  /** The call a request concerns, so its log lines carry call_id (and the call's tenant, when it is live). */
  callIdOf?: (req: Req) => string | { callId: string; tenantId: string } | undefined;
}

function finish(deps: RpcDeps, ctx: Context, started: bigint, err: unknown): grpc.ServiceError | null {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  deps.metrics.grpcDuration.observe({ method: ctx.method }, seconds);
  const attributes: Record<string, unknown> = { 'rpc.method': ctx.method, 'rpc.duration_ms': Math.round(seconds * 1e6) / 1e3 };
  if (err === undefined) {
    deps.metrics.grpcRequests.inc({ method: ctx.method, code: 'OK' });
    ctx.log.info({ event: 'GRPC_REQUEST', attributes: { ...attributes, 'rpc.grpc.status': 'OK' } }, `${ctx.method} OK`);
    return null;
  }
  const mapped = toGrpcStatus(err);
  const name = statusName(mapped.code);
  deps.metrics.grpcRequests.inc({ method: ctx.method, code: name });
  const fields = { event: 'GRPC_REQUEST', attributes: { ...attributes, 'rpc.grpc.status': name } };
  if (mapped.expected) ctx.log.warn(fields, `${ctx.method} ${name}: ${mapped.details}`);
  else ctx.log.error({ ...fields, error: err }, `${ctx.method} failed`);
  const error = new Error(mapped.details) as grpc.ServiceError;
  error.code = mapped.code;
  error.details = mapped.details;
  error.metadata = ctx.responseMetadata();
  return error;
}

function parse<Req>(spec: Spec<Req>, ctx: Context, raw: unknown): Req {
  const req = spec.schema.parse(raw);
  const call = spec.callIdOf?.(req);
  if (typeof call === 'string' || call === undefined) ctx.bindCall(call);
  else ctx.bindCall(call.callId, call.tenantId);
  return req;
}

export function unary<Req, Res>(deps: RpcDeps, spec: Spec<Req>, handler: (req: Req, ctx: RpcContext) => Promise<Res>): grpc.handleUnaryCall<unknown, Res> {
  return (call, callback) => {
    const started = process.hrtime.bigint();
    const ctx = new Context(deps.logging, spec.method, call.metadata);
    call.on('cancelled', () => ctx.cancel());
    call.sendMetadata(ctx.responseMetadata());
    (async () => handler(parse(spec, ctx, call.request), ctx))().then(
      (res) => {
        finish(deps, ctx, started, undefined);
        callback(null, res);
      },
      (err: unknown) => callback(finish(deps, ctx, started, err)),
    );
  };
}

/** Runs a streaming handler: the stream ends with OK, or with the mapped error status. */
function runStream(deps: RpcDeps, method: string, call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, body: (ctx: Context) => Promise<void>): void {
  const started = process.hrtime.bigint();
  const ctx = new Context(deps.logging, method, call.metadata);
  call.on('cancelled', () => ctx.cancel());
  call.sendMetadata(ctx.responseMetadata());
  (async () => body(ctx))().then(
    () => {
      finish(deps, ctx, started, undefined);
      call.end();
    },
    (err: unknown) => {
      const e = finish(deps, ctx, started, ctx.signal.aborted ? cancelled() : err);
      // A cancelled call has no one left to tell.
      if (!ctx.signal.aborted && e) call.emit('error', e);
    },
  );
}

export function serverStream<Req, Res>(
  deps: RpcDeps,
  spec: Spec<Req>,
  handler: (req: Req, ctx: RpcContext, call: grpc.ServerWritableStream<unknown, Res>) => Promise<void>,
): grpc.handleServerStreamingCall<unknown, Res> {
  return (call) => runStream(deps, spec.method, call, (ctx) => handler(parse(spec, ctx, call.request), ctx, call));
}

export function bidiStream<Req, Res>(
  deps: RpcDeps,
  method: string,
  handler: (call: grpc.ServerDuplexStream<Req, Res>, ctx: RpcContext) => Promise<void>,
): grpc.handleBidiStreamingCall<Req, Res> {
  return (call) => runStream(deps, method, call as unknown as grpc.ServerDuplexStream<unknown, unknown>, (ctx) => handler(call, ctx));
}

const cancelled = (): MediaError => new MediaError('cancelled', 'cancelled by the client');

export { Status };
