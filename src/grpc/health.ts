import * as grpc from '@grpc/grpc-js';
import { TypedEmitter } from '../util/typed-emitter.ts';
import { MEDIA_SERVICE_NAME } from './proto.ts';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

/** The service's readiness, read by grpc.health.v1 and by /readyz. */
export class HealthState extends TypedEmitter<{ change: [ServingStatus] }> {
  #status: ServingStatus = 'NOT_SERVING';

  get status(): ServingStatus {
    return this.#status;
  }

  set(status: ServingStatus): void {
    if (status === this.#status) return;
    this.#status = status;
    this.safeEmit('change', status);
  }
}

const KNOWN_SERVICES = new Set(['', MEDIA_SERVICE_NAME]);

interface HealthRequest {
  service: string;
}
interface HealthResponse {
  status: ServingStatus | 'SERVICE_UNKNOWN';
}

export function healthHandlers(state: HealthState): grpc.UntypedServiceImplementation {
  const check: grpc.handleUnaryCall<HealthRequest, HealthResponse> = (call, callback) => {
    if (!KNOWN_SERVICES.has(call.request.service)) {
      callback({ code: grpc.status.NOT_FOUND, details: `unknown service: ${call.request.service}` });
      return;
    }
    callback(null, { status: state.status });
  };
  const watch: grpc.handleServerStreamingCall<HealthRequest, HealthResponse> = (call) => {
    if (!KNOWN_SERVICES.has(call.request.service)) {
      call.write({ status: 'SERVICE_UNKNOWN' });
      return;
    }
    const send = (status: ServingStatus): void => {
      call.write({ status });
    };
    send(state.status);
    state.on('change', send);
    const stop = (): void => {
      state.off('change', send);
    };
    call.on('cancelled', stop);
    call.on('close', stop);
  };
  return { Check: check, Watch: watch };
}
