import { fuzz } from './targets.ts';

// npm run fuzz [-- ITERATIONS [SEED]]: a longer run than the test suite's, from a chosen seed.
const iterations = Number(process.argv[2] ?? 200_000);
const seed = Number(process.argv[3] ?? Date.now() % 0x7fffffff);
const started = performance.now();
const counts = fuzz(seed, iterations);
const total = Object.values(counts).reduce((a, b) => a + b, 0);
console.log(`fuzz: ${total} inputs over ${Object.keys(counts).length} targets from seed ${seed} in ${Math.round(performance.now() - started)} ms, no invariant broken`);
