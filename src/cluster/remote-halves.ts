import { z } from 'zod';
import type { LinkPeer } from '../bridge/frame-link.ts';
import { MediaError } from '../errors/media-error.ts';
import type { CallDirectory } from './call-directory.ts';
import type { InstanceBus } from './instance-bus.ts';
import type { Legs, RemoteHalfRequest, RemoteHalves } from './legs.ts';
import { shardOfPort, type ShardSlice } from './shard-plan.ts';

/** Long enough for the other instance to ask its shard, short enough for the client's deadline. */
const OPEN_TIMEOUT_MS = 6000;

const peer = z.object({ address: z.string().min(1).max(64), port: z.number().int().min(1).max(65535) });
const message = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('leg-open'),
    req: z.object({
      id: z.string().uuid(),
      port: z.number().int().min(0).max(65535),
      callId: z.string().max(256).optional(),
      token: z.string().length(24),
      peer: z.string().max(300),
      role: z.union([z.literal(0), z.literal(1)]),
      inConference: z.string().max(256).optional(),
    }),
  }),
  z.object({ type: z.literal('leg-connect'), id: z.string().uuid(), peer }),
  z.object({ type: z.literal('leg-close'), id: z.string().uuid(), release: z.boolean(), cut: z.boolean().optional() }),
]);
type Message = z.infer<typeof message>;

/** Halves of legs on other instances, asked for over the bus. */
export function remoteHalves(bus: InstanceBus): RemoteHalves {
  return {
    async open(instance, req) {
      return bus.request<{ peer: LinkPeer; callId: string }>(instance, { type: 'leg-open', req } satisfies Message, OPEN_TIMEOUT_MS);
    },
    connect(instance, id, p) {
      bus.note(instance, { type: 'leg-connect', id, peer: p } satisfies Message);
    },
    close(instance, id, release, cut) {
      bus.note(instance, { type: 'leg-close', id, release, ...(cut ? { cut } : {}) } satisfies Message);
    },
  };
}

/** Answers other instances that ask for halves of this instance's calls. */
export function serveRemoteHalves(bus: InstanceBus, o: { legs: Legs; slices: readonly ShardSlice[]; directory: CallDirectory }): void {
  bus.handle({
    request: async (from, body) => {
      const m = message.safeParse(body);
      if (!m.success || m.data.type !== 'leg-open') throw new MediaError('invalid_argument', 'not a request this instance answers');
      const req: RemoteHalfRequest = m.data.req;
      const callId = req.port ? o.directory.callAt(req.port) : req.callId;
      const port = req.port || (req.callId !== undefined ? o.directory.entryOf(req.callId)?.port : undefined);
      const shard = port === undefined ? null : shardOfPort(o.slices, port);
      if (shard === null || port === undefined || !callId) throw new MediaError('not_found', req.port ? `no call session on port ${req.port}` : `no call ${req.callId ?? ''}`);
      return o.legs.openForInstance(from, shard, { ...req, port }, callId);
    },
    note: (from, body) => {
      const m = message.safeParse(body);
      if (!m.success) return;
      if (m.data.type === 'leg-connect') o.legs.connectFromInstance(from, m.data.id, m.data.peer);
      else if (m.data.type === 'leg-close') o.legs.closeFromInstance(from, m.data.id, m.data.release, m.data.cut ?? false);
    },
  });
}
