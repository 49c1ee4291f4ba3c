/**
 * The web demo page: join a room, talk, hear the others, watch their levels, play a test
 * prompt into the room. `window.demo` exposes the same controls and state to browser tests.
 */
import type { PeerInfo } from '../../src/signaling/contract.ts';
import { RoomClient, SILENCE_DB } from './room.ts';
import type { DemoStats } from './stats.ts';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
};

const form = $<HTMLFormElement>('join-form');
const roomInput = $<HTMLInputElement>('room');
const nameInput = $<HTMLInputElement>('name');
const joinButton = $<HTMLButtonElement>('join');
const leaveButton = $<HTMLButtonElement>('leave');
const micButton = $<HTMLButtonElement>('mic');
const testButton = $<HTMLButtonElement>('test-leg');
const loopBox = $<HTMLInputElement>('test-loop');
const statusLine = $<HTMLParagraphElement>('status');
const peerList = $<HTMLUListElement>('peers');
const statsLine = $<HTMLParagraphElement>('stats');
const roomLabel = $<HTMLSpanElement>('room-label');
const conferenceSection = $<HTMLElement>('conference');
const conferenceList = $<HTMLUListElement>('conference-list');
const conferenceRole = $<HTMLElement>('conference-role');

const query = new URLSearchParams(location.search);
roomInput.value = query.get('room') || 'demo';
nameInput.value = query.get('name') || `guest-${Math.floor(1000 + Math.random() * 9000)}`;

/** Every status line shown, oldest first (tests print it when something fails). */
const statusLog: { at: number; level: 'info' | 'warn'; text: string }[] = [];

const room = new RoomClient({
  audioParent: $<HTMLDivElement>('remote-audio'),
  events: {
    change: render,
    levels: renderLevels,
    status(text, level) {
      statusLog.push({ at: Date.now(), level, text });
      if (statusLog.length > 200) statusLog.shift();
      statusLine.textContent = text;
      statusLine.dataset['level'] = level;
      // Refusals are expected in a demo (wrong room, full room): a warning, not an error.
      if (level === 'warn') console.warn(`[demo] ${text}`);
    },
  },
});

const KIND_LABEL: Record<PeerInfo['kind'], string> = { browser: 'browser', phone: 'phone', 'test-leg': 'test prompt', conference: 'conference' };

function render(): void {
  const joined = room.state === 'joined';
  const busy = room.state === 'joining' || room.state === 'reconnecting';
  joinButton.disabled = joined || busy;
  leaveButton.disabled = !(joined || busy);
  roomInput.disabled = nameInput.disabled = joined || busy;
  micButton.disabled = !joined;
  micButton.textContent = room.micOn ? 'Microphone on' : 'Microphone off';
  micButton.setAttribute('aria-pressed', String(room.micOn));
  testButton.disabled = !joined;
  testButton.textContent = room.testLegPeerId ? 'Stop test prompt' : 'Play test prompt';
  document.body.dataset['state'] = room.state;
  roomLabel.textContent = joined ? `${room.roomId}${room.callBridged ? ' · phone call' : ''}` : room.state;

  peerList.replaceChildren(
    ...[...room.peers.values()].map((peer) => {
      const li = document.createElement('li');
      li.dataset['peerId'] = peer.peerId;
      li.dataset['kind'] = peer.kind;
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = peer.displayName + (peer.self ? ' (you)' : '');
      const kind = document.createElement('span');
      kind.className = `kind kind-${peer.kind}`;
      kind.textContent = KIND_LABEL[peer.kind] ?? peer.kind;
      const muted = [...peer.producers.values()].some((p) => p.paused) || (peer.self && !room.micOn);
      const state = document.createElement('span');
      state.className = 'muted';
      state.textContent = muted ? 'muted' : peer.producers.size === 0 ? 'no audio' : '';
      const meter = document.createElement('span');
      meter.className = 'meter';
      meter.setAttribute('role', 'meter');
      meter.setAttribute('aria-label', `${peer.displayName} audio level`);
      meter.append(document.createElement('span'));
      li.append(name, kind, state, meter);
      return li;
    }),
  );
  renderConference();
  renderLevels();
}

/** The conference's participants of every kind, talking and mute state, and a moderator's buttons. */
function renderConference(): void {
  const view = room.state === 'joined' ? room.conference : null;
  conferenceSection.hidden = view === null;
  if (!view) return;
  conferenceRole.textContent = room.moderator ? '· you moderate' : '';
  conferenceList.replaceChildren(
    ...view.participants.map((p) => {
      const li = document.createElement('li');
      li.dataset['participantId'] = p.participantId;
      li.dataset['kind'] = p.kind;
      li.dataset['talking'] = String(p.talking);
      const name = document.createElement('span');
      name.className = 'name';
      name.textContent = (p.displayName || p.callId || p.participantId) + (p.participantId === room.peerId ? ' (you)' : '');
      const kind = document.createElement('span');
      kind.className = `kind kind-${p.kind}`;
      kind.textContent = KIND_LABEL[p.kind as PeerInfo['kind']] ?? p.kind;
      const talking = document.createElement('span');
      talking.className = 'talking';
      talking.textContent = p.talking ? 'talking' : '';
      const state = document.createElement('span');
      state.className = 'muted';
      state.textContent = [p.muted ? 'muted' : '', p.deaf ? 'deaf' : ''].filter(Boolean).join(', ');
      li.append(name, kind, talking, state);
      if (room.moderator) {
        const button = (label: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }): HTMLButtonElement => {
          const b = document.createElement('button');
          b.type = 'button';
          b.textContent = label;
          b.addEventListener('click', act(() => room.control(p.participantId, c)));
          return b;
        };
        li.append(button(p.muted ? 'Unmute' : 'Mute', { mute: !p.muted }), button(p.deaf ? 'Undeafen' : 'Deafen', { deaf: !p.deaf }), button('Kick', { kick: true }));
      }
      return li;
    }),
  );
}

/** dBov to a 0..1 bar: -90 dBov and below is empty, -10 dBov and above full (levels are averages). */
const barOf = (db: number): number => Math.min(1, Math.max(0, (db + 90) / 80));

function renderLevels(): void {
  for (const li of peerList.children) {
    const peerId = (li as HTMLElement).dataset['peerId'] ?? '';
    const db = room.levels.get(peerId) ?? SILENCE_DB;
    const bar = li.querySelector<HTMLSpanElement>('.meter > span');
    if (bar) bar.style.width = `${(barOf(db) * 100).toFixed(0)}%`;
    li.querySelector('.meter')?.setAttribute('aria-valuenow', String(Math.round(db)));
  }
}

function formatStats(s: DemoStats): string {
  const sent = s.outbound.reduce((n, o) => n + o.packetsSent, 0);
  const parts = [`sent ${sent} pkts`];
  for (const i of s.inbound) {
    const who = room.peers.get(i.peerId)?.displayName ?? i.peerId;
    parts.push(`${who}: ${i.packetsReceived} pkts, level ${i.audioLevel.toFixed(3)}`);
  }
  return parts.join(' · ');
}

let statsTimer: ReturnType<typeof setInterval> | undefined;
function watchStats(): void {
  statsTimer ??= setInterval(() => {
    if (room.state !== 'joined') {
      statsLine.textContent = '';
      return;
    }
    room.stats().then(
      (s) => (statsLine.textContent = formatStats(s)),
      (error: unknown) => console.warn('[demo] getStats failed', error),
    );
  }, 1_000);
}

async function join(roomId = roomInput.value.trim(), name = nameInput.value.trim()): Promise<void> {
  roomInput.value = roomId || 'demo';
  nameInput.value = name || nameInput.value;
  // The address bar names the room: copy it to invite someone.
  const url = new URL(location.href);
  url.searchParams.set('room', roomInput.value);
  url.searchParams.set('name', nameInput.value);
  history.replaceState(null, '', url);
  watchStats();
  await room.join(roomInput.value, nameInput.value);
}

/** A UI action that must never surface as an uncaught error. */
const act = (what: () => Promise<unknown>) => (): void => {
  what().catch((error: unknown) => console.warn('[demo]', error instanceof Error ? error.message : error));
};

form.addEventListener('submit', (e) => {
  e.preventDefault();
  act(() => join())();
});
leaveButton.addEventListener('click', act(() => room.leave()));
micButton.addEventListener('click', act(() => room.setMic(!room.micOn)));
testButton.addEventListener('click', act(() => (room.testLegPeerId ? room.stopTestLeg() : room.startTestLeg({ loop: loopBox.checked }))));
// Autoplay can be refused before the first click: any click retries the remote audio.
document.addEventListener('click', () => {
  for (const r of room.remote.values()) if (r.element.paused) r.element.play().catch(() => undefined);
});
window.addEventListener('pagehide', () => void room.leave());

const demo = {
  get state() {
    return room.state;
  },
  get roomId() {
    return room.roomId;
  },
  get peerId() {
    return room.peerId;
  },
  get micOn() {
    return room.micOn;
  },
  get testLegPeerId() {
    return room.testLegPeerId;
  },
  get peers(): (PeerInfo & { self: boolean; producers: { producerId: string; paused: boolean }[] })[] {
    return [...room.peers.values()].map((p) => ({
      peerId: p.peerId,
      displayName: p.displayName,
      kind: p.kind,
      self: p.self,
      producers: [...p.producers].map(([producerId, { paused }]) => ({ producerId, paused })),
    }));
  },
  /** Latest audio level per peer in dBov (-127 silent). */
  get levels(): Record<string, number> {
    return Object.fromEntries(room.levels);
  },
  get status() {
    return statusLog.map((s) => `${s.level}: ${s.text}`);
  },
  /** The room's conference as the page shows it (null: the room is no conference). */
  get conference() {
    return room.conference;
  },
  get moderator() {
    return room.moderator;
  },
  control: (participantId: string, c: { mute?: boolean; deaf?: boolean; kick?: boolean }) => room.control(participantId, c),
  stats: () => room.stats(),
  join: (roomId?: string, name?: string) => join(roomId, name),
  leave: () => room.leave(),
  setMic: (on: boolean) => room.setMic(on),
  startTestLeg: (opts?: { prompt?: string; loop?: boolean }) => room.startTestLeg(opts),
  stopTestLeg: () => room.stopTestLeg(),
};
declare global {
  interface Window {
    demo: typeof demo;
  }
}
window.demo = demo;
render();
if (query.get('autojoin') === '1') act(() => join())();
