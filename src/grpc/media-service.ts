import type * as grpc from '@grpc/grpc-js';
import { MediaError } from '../errors/media-error.ts';
import { bidiStream, serverStream, unary, type RpcDeps } from './middleware.ts';
import * as s from './schemas.ts';

const notYet = (rpc: string): MediaError =>
  new MediaError('unimplemented', `${rpc} is not available in this version of the media service`);

/** The contract's seven RPCs: each validated at the edge, traced, timed and counted. */
export function mediaServiceHandlers(deps: RpcDeps): grpc.UntypedServiceImplementation {
  return {
    AllocatePort: unary(deps, { method: 'AllocatePort', schema: s.allocatePortRequest, callIdOf: (r) => r.call_id }, async () => {
      throw notYet('AllocatePort');
    }),
    ReleasePort: unary(deps, { method: 'ReleasePort', schema: s.releasePortRequest }, async () => {
      throw notYet('ReleasePort');
    }),
    PlayAudio: unary(deps, { method: 'PlayAudio', schema: s.playAudioRequest }, async () => {
      throw notYet('PlayAudio');
    }),
    RecordAudio: serverStream(deps, { method: 'RecordAudio', schema: s.recordAudioRequest }, async () => {
      throw notYet('RecordAudio');
    }),
    StartRecording: unary(deps, { method: 'StartRecording', schema: s.startRecordingRequest, callIdOf: (r) => r.call_id || undefined }, async () => {
      throw notYet('StartRecording');
    }),
    StopRecording: unary(deps, { method: 'StopRecording', schema: s.stopRecordingRequest }, async () => {
      throw notYet('StopRecording');
    }),
    StreamAudioToCall: bidiStream<s.StreamAudioToCallRequest, s.StreamAudioToCallResponse>(deps, 'StreamAudioToCall', async () => {
      throw notYet('StreamAudioToCall');
    }),
  };
}
