// `npm run bench [name...]`: runs the named benchmarks (all when none), printing numbers.
const all: Record<string, string> = {
  calls: './calls.ts',
  'live-audio': './live-audio.ts',
  recording: './recording.ts',
  transcode: './transcode.ts',
  'slow-listeners': './slow-listeners.ts',
  shards: './shards.ts',
  'ai-calls': './ai-calls.ts',
  footprint: './footprint.ts',
  conference: './conference.ts',
};
const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(all);
for (const name of names) {
  const path = all[name];
  if (!path) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  console.log(`== ${name}`);
  await import(path);
}
