// The floor under an AI call's fork: a bare grpc-js server that streams 640-byte messages
// (20 ms of 16 kHz L16) at 50 per second on each server stream, with no media work; the
// streams are spread over 10 phases of the 20 ms period, as the bench's phones are, and each
// message starts with the machine's monotonic time it was written at (a float64), so the
// client reads the latency of a bare server's loop, HTTP/2 and its own loop on this machine.
// Run as a child process: it prints the port it listens on, then serves.
import * as grpc from '@grpc/grpc-js';
import { every } from './harness.ts';
import { sharedClockMs } from './proc.ts';

const PHASES = 10;

const bytes = (b: Buffer): Buffer => b;
export const floorService: grpc.ServiceDefinition = {
  frames: {
    path: '/bench.Floor/Frames',
    requestStream: false,
    responseStream: true,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop()!)) {
  const phases = Array.from({ length: PHASES }, () => new Set<grpc.ServerWritableStream<Buffer, Buffer>>());
  let next = 0;
  let phase = 0;
  every(20 / PHASES, () => {
    for (const s of phases[phase]!) {
      const frame = Buffer.alloc(640);
      frame.writeDoubleLE(sharedClockMs(), 0);
      s.write(frame);
    }
    phase = (phase + 1) % PHASES;
  });
  const server = new grpc.Server();
  server.addService(floorService, {
    frames: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      const mine = phases[next++ % PHASES]!;
      mine.add(call);
      call.on('cancelled', () => mine.delete(call));
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!({ port });
  });
}

// The bench that forked this process failed and is gone: nothing reads what it would send.
process.on('disconnect', () => process.exit(0));
