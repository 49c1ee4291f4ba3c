import { MediaError } from '../errors/media-error.ts';
import type { CallSession } from '../sessions/call-session.ts';
import { CALL_RATE } from '../sessions/call-session.ts';
import { parseAudioUri, parseTargetAddr } from './audio-uri.ts';
import type { PromptLoader } from './prompt-loader.ts';

export interface PlayRequest {
  uri: string;
  targetAddr: string;
  traceId: string;
}

/**
 * PlayAudio: a control action on the call, or a prompt decoded (once, then cached) and
 * queued behind the call's other prompts. Answers when the prompt is queued; its end is
 * announced by the call.media.playback.finished event.
 */
export async function playAudio(session: CallSession, req: PlayRequest, loader: PromptLoader, maxDataBytes: number): Promise<string> {
  const uri = parseAudioUri(req.uri, { maxDataBytes });
  const target = req.targetAddr ? parseTargetAddr(req.targetAddr) : null;
  if (uri.kind === 'control') {
    switch (uri.action) {
      case 'set_target':
        if (!target) throw new MediaError('invalid_argument', 'control://set_target needs rtp_target_addr (ip:port)');
        session.setTarget(target);
        return `RTP target set to ${req.targetAddr}`;
      case 'enable_echo':
        if (target) session.setTarget(target);
        session.setEcho(true);
        return 'echo enabled';
      case 'disable_echo':
        session.setEcho(false);
        return 'echo disabled';
      case 'stop_playback':
        return `stopped ${session.playback.stop()} prompt(s)`;
    }
  }
  const pcm = await loader.load(uri);
  if (session.closed) throw new MediaError('not_found', `the call on port ${session.port} ended while its prompt was loading`);
  if (target) session.setTarget(target);
  const queued = session.playback.enqueue(req.uri, req.traceId, pcm);
  if (!queued) throw new MediaError('resource_exhausted', 'too many prompts queued on this call');
  const ms = Math.round((pcm.length * 1000) / CALL_RATE);
  return session.playback.length > 1 ? `queued ${ms} ms behind ${session.playback.length - 1} prompt(s)` : `playing ${ms} ms`;
}
