import { constants } from 'node:fs';
import { copyFile, link, mkdir, open, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RecordingDestination } from '../recording/target.ts';
import { candidateNames } from './object-names.ts';
import { StoreError } from './store-error.ts';
import type { PutOptions, RecordingStore, StoredObject } from './store.ts';

/**
 * Local directory destinations. The recording is copied beside the target and synced, then
 * hard-linked to its name: link() fails on a name that exists, so no file is ever replaced,
 * and a name is only ever seen complete.
 */
export class FileStore implements RecordingStore {
  async put(localPath: string, dest: RecordingDestination, opts: PutOptions): Promise<StoredObject> {
    if (dest.kind !== 'file') throw new StoreError('wrong_store', 'FileStore stores file:// destinations only', { permanent: true });
    const dir = dirname(dest.path);
    await mkdir(dir, { recursive: true });
    const names = candidateNames(dest.path, opts.recordingId);
    // One per recording, so an attempt that died between link and unlink is recognised.
    const tmp = join(dir, `.${basename(dest.path)}.${opts.recordingId}.partial`);
    const landed = await this.#landedBefore(tmp, names);
    if (landed) {
      await rm(tmp, { force: true });
      return stored(landed, landed !== dest.path);
    }
    // Never copy onto a leftover: it may share its data with a stored recording.
    await rm(tmp, { force: true });
    try {
      await copyFile(localPath, tmp, constants.COPYFILE_EXCL);
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      for (const name of names) {
        try {
          await link(tmp, name);
          return stored(name, name !== dest.path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
      }
    } finally {
      await rm(tmp, { force: true });
    }
    throw new StoreError('name_taken', `every name for the recording at ${dest.path} is taken`, { permanent: true });
  }

  /** The name a previous attempt linked the same temporary file to, if it got that far. */
  async #landedBefore(tmp: string, names: string[]): Promise<string | null> {
    const t = await stat(tmp).catch(() => null);
    if (!t || t.nlink < 2) return null;
    for (const name of names) {
      const s = await stat(name).catch(() => null);
      if (s && s.ino === t.ino && s.dev === t.dev) return name;
    }
    return null;
  }
}

function stored(path: string, renamed: boolean): StoredObject {
  const uri = pathToFileURL(path).href;
  return { uri, publicUrl: uri, renamed };
}
