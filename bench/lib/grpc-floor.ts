// The floor under an AI call's fork: a bare grpc-js server that streams 640-byte messages
// (20 ms of 16 kHz L16) at 50 per second on each server stream, from one 20 ms timer, with
// no media work. Run as a child process: it prints the port it listens on, then serves.
import * as grpc from '@grpc/grpc-js';

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
  const streams = new Set<grpc.ServerWritableStream<Buffer, Buffer>>();
  const frame = Buffer.alloc(640);
  setInterval(() => {
    for (const s of streams) s.write(frame);
  }, 20);
  const server = new grpc.Server();
  server.addService(floorService, {
    frames: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
      streams.add(call);
      call.on('cancelled', () => streams.delete(call));
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!({ port });
  });
}

// The bench that forked this process failed and is gone: nothing reads what it would send.
process.on('disconnect', () => process.exit(0));
