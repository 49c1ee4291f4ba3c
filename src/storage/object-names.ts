/**
 * The names a recording may take at its destination, in order: the one asked for, then the
 * same name with the first 8 characters of the recording id, then with the whole id. A store
 * never replaces an object, so a name already taken by another recording moves it to the next.
 */
export function candidateNames(name: string, recordingId: string): string[] {
  const slash = name.lastIndexOf('/');
  const dot = name.lastIndexOf('.');
  const cut = dot > slash + 1 ? dot : name.length;
  const stem = name.slice(0, cut);
  const ext = name.slice(cut);
  const short = recordingId.slice(0, 8);
  return short === recordingId ? [name, `${stem}-${short}${ext}`] : [name, `${stem}-${short}${ext}`, `${stem}-${recordingId}${ext}`];
}
