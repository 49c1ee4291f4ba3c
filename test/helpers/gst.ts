import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./gst-phone.py', import.meta.url));

/** One source as GStreamer's rtpsession sees it (its `source-stats`, field names as GStreamer spells them). */
export type GstSource = Record<string, number | boolean | string> & { ssrc: number; internal: boolean };

/**
 * A Python that has GStreamer's introspection bindings (Debian's python3-gi and
 * gir1.2-gstreamer-1.0): the one on PATH, else the system's, whichever imports them.
 */
export function gstPython(): string | null {
  for (const py of ['python3', '/usr/bin/python3']) {
    const r = spawnSync(py, ['-c', "import gi; gi.require_version('Gst', '1.0'); from gi.repository import Gst; Gst.init(None); assert Gst.ElementFactory.find('srtpenc') and Gst.ElementFactory.find('rtpbin')"], { stdio: 'ignore' });
    if (r.status === 0) return py;
  }
  return null;
}

export interface GstPhone {
  proc: ChildProcess;
  /** The latest statistics of each source GStreamer knows, by SSRC (kept after it forgets one). */
  sources: Map<number, GstSource>;
  stderr(): string;
  /** Ends it (closes its stdin) and waits for it to exit. */
  stop(): Promise<void>;
}

/** GStreamer rtpbin as a phone toward `servicePort` (RTCP to +1), from `localPort` (RTCP on +1). */
export async function startGstPhone(python: string, opts: { servicePort: number; localPort: number; packets: number; srtp?: { suite: string; serviceKey: string; phoneKey: string } }): Promise<GstPhone> {
  const b64 = (k: string): string => k.replace(/^inline:/, '');
  const args = [SCRIPT, String(opts.servicePort), String(opts.localPort), String(opts.packets), ...(opts.srtp ? [opts.srtp.suite, b64(opts.srtp.serviceKey), b64(opts.srtp.phoneKey)] : [])];
  const proc = spawn(python, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const sources = new Map<number, GstSource>();
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { ready?: boolean; error?: string; sources?: GstSource[] };
      if (m.ready) resolve();
      if (m.error) reject(new Error(`GStreamer: ${m.error}`));
      for (const s of m.sources ?? []) sources.set(s.ssrc, s);
    });
    proc.once('exit', (code) => reject(new Error(`gst-phone exited (${code}): ${err}`)));
  });
  await ready;
  return {
    proc,
    sources,
    stderr: () => err,
    async stop() {
      if (proc.exitCode !== null) return;
      const exited = once(proc, 'exit');
      proc.stdin!.end();
      const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(kill);
    },
  };
}
