import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RecordingDestination } from '../recording/target.ts';
import type { RecordingStore, StoredObject } from './store.ts';

/** Local directory destinations: copied beside the target, synced, then renamed into place. */
export class FileStore implements RecordingStore {
  async put(localPath: string, dest: RecordingDestination): Promise<StoredObject> {
    if (dest.kind !== 'file') throw new Error('FileStore stores file:// destinations only');
    await mkdir(dirname(dest.path), { recursive: true });
    const tmp = `${dest.path}.partial-${process.pid}`;
    try {
      await copyFile(localPath, tmp);
      const fh = await open(tmp, 'r+');
      await fh.sync();
      await fh.close();
      await rename(tmp, dest.path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const uri = pathToFileURL(dest.path).href;
    return { uri, publicUrl: uri };
  }
}
