import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

export const PROTO_ROOT = fileURLToPath(new URL('../../proto', import.meta.url));

const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export interface ProtoServices {
  media: grpc.ServiceClientConstructor;
  health: grpc.ServiceClientConstructor;
}

/** The contract and the health protocol as proto-loader describes them (codecs per method). */
export function loadDefinitions(): protoLoader.PackageDefinition {
  return protoLoader.loadSync(['sentiric/media/v1/media.proto', 'grpc/health/v1/health.proto'], LOADER_OPTIONS);
}

/** Loads the contract and the health protocol; clients in tests use the same definitions. */
export function loadProtos(): ProtoServices {
  const def = loadDefinitions();
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    sentiric: { media: { v1: { MediaService: grpc.ServiceClientConstructor } } };
    grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
  };
  return { media: pkg.sentiric.media.v1.MediaService, health: pkg.grpc.health.v1.Health };
}

export const MEDIA_SERVICE_NAME = 'sentiric.media.v1.MediaService';
