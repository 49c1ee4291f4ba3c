import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { RecordingDestination } from './target.ts';

/** What is known of a recording besides its audio; written next to the spool file. */
export const spoolMeta = z.object({
  id: z.string(),
  callId: z.string(),
  traceId: z.string(),
  tenantId: z.string(),
  destination: z.union([
    z.object({ kind: z.literal('file'), path: z.string() }),
    z.object({ kind: z.literal('s3'), bucket: z.string(), key: z.string() }),
  ]),
  format: z.enum(['wav', 'mp3']),
  sampleRate: z.number().int(),
  channels: z.number().int(),
  /**
   * recording: still being written (or the writer crashed); finalized: ready to upload;
   * stored: the store confirmed it and it was announced (only the clean-up is left);
   * failed: the store refused it for good; kept, and tried once at each start.
   */
  state: z.enum(['recording', 'finalized', 'stored', 'failed']),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  /** Upload attempts that failed, over every process that tried. */
  attempts: z.number().int().default(0),
  /** Of those, the ones the store answered with a permanent refusal. */
  permanentFailures: z.number().int().default(0),
  lastError: z.string().optional(),
  storedUri: z.string().optional(),
});
export type SpoolMeta = z.infer<typeof spoolMeta> & { destination: RecordingDestination };

export const metaPath = (dir: string, id: string): string => join(dir, `${id}.json`);
export const wavPath = (dir: string, id: string): string => join(dir, `${id}.wav`);
export const mp3Path = (dir: string, id: string): string => join(dir, `${id}.mp3`);

/** Replaces the file atomically, so a crash leaves the old or the new content, never half. */
export async function writeMeta(dir: string, meta: SpoolMeta): Promise<void> {
  const path = metaPath(dir, meta.id);
  await writeFile(`${path}.tmp`, JSON.stringify(meta));
  await rename(`${path}.tmp`, path);
}

/** Audio first, metadata last: a crash in between leaves an entry that still says what it is. */
export async function removeSpoolEntry(dir: string, id: string): Promise<void> {
  await Promise.all([wavPath, mp3Path].map((p) => rm(p(dir, id), { force: true })));
  await rm(`${metaPath(dir, id)}.tmp`, { force: true });
  await rm(metaPath(dir, id), { force: true });
}

export async function readAllMeta(dir: string): Promise<{ metas: SpoolMeta[]; broken: string[] }> {
  const metas: SpoolMeta[] = [];
  const broken: string[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.json')) continue;
    try {
      metas.push(spoolMeta.parse(JSON.parse(await readFile(join(dir, name), 'utf8'))) as SpoolMeta);
    } catch {
      broken.push(name);
    }
  }
  return { metas, broken };
}
