import { z } from 'zod';

// Shapes checked at the socket edge. mediasoup checks the inside of RTP and DTLS
// parameters itself; its complaints come back to the client as invalid_argument.
const id = (name: string) => z.string({ error: `${name} is required` }).min(1, `${name} is required`).max(64, `${name} is too long`);
const object = (name: string) => z.record(z.string(), z.unknown(), { error: `${name} must be an object` });

export const joinRequest = z.object({
  roomId: z.string({ error: 'roomId is required' }).regex(/^[A-Za-z0-9._:@-]{1,128}$/, 'roomId: 1-128 characters of A-Z a-z 0-9 . _ : @ -'),
  token: z.string({ error: 'token is required' }).min(1, 'token is required').max(4096, 'token is too long'),
  displayName: z.string().trim().min(1).max(64, 'displayName is longer than 64 characters').optional(),
});

export const createTransportRequest = z.object({ direction: z.enum(['send', 'recv'], { error: 'direction must be "send" or "recv"' }) });
export const connectTransportRequest = z.object({ transportId: id('transportId'), dtlsParameters: object('dtlsParameters') });
export const produceRequest = z.object({
  transportId: id('transportId'),
  kind: z.enum(['audio', 'video'], { error: 'kind must be "audio" or "video"' }),
  rtpParameters: object('rtpParameters'),
});
export const producerRequest = z.object({ producerId: id('producerId') });
export const consumeRequest = z.object({ transportId: id('transportId'), producerId: id('producerId'), rtpCapabilities: object('rtpCapabilities') });
export const consumerRequest = z.object({ consumerId: id('consumerId') });
export const startTestLegRequest = z.object({
  prompt: z.string().max(256, 'prompt is too long').optional(),
  loop: z.boolean().optional(),
});
export const emptyRequest = z.object({}).optional();

export const conferenceControlRequest = z
  .object({ participantId: z.string().min(1, 'participantId is required').max(256), mute: z.boolean().optional(), deaf: z.boolean().optional(), kick: z.boolean().optional() })
  .strict()
  .refine((r) => r.mute !== undefined || r.deaf !== undefined || r.kick === true, 'say what to change: mute, deaf or kick');
