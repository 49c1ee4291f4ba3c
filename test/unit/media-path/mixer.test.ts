import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Mixer, type AudioSource } from '../../../src/media-path/mixer.ts';

const constant = (v: number | null): AudioSource & { v: number | null } => ({
  v,
  mixInto(acc) {
    if (this.v === null) return false;
    for (let i = 0; i < acc.length; i++) acc[i]! += this.v;
    return true;
  },
});

test('the sum without the source set aside is formed before clipping, not by subtracting from the clipped whole', () => {
  const m = new Mixer(4);
  const prompt = constant(20000);
  const browsers = constant(20000);
  m.add(browsers);
  m.add(prompt);
  m.setAside(browsers);
  const out = new Int16Array(4);
  assert.equal(m.mix(out), true);
  assert.deepEqual([...out], [32767, 32767, 32767, 32767], 'the whole saturates');
  // Clipped whole minus the browsers would leave 12767: the prompt must come out whole.
  assert.deepEqual([...m.without!], [20000, 20000, 20000, 20000]);
  assert.equal(m.sole, null);
  prompt.v = null;
  m.mix(out);
  assert.equal(m.without, null, 'nothing but the set-aside source was heard');
  assert.equal(m.sole, browsers);
  browsers.v = null;
  prompt.v = 5;
  m.mix(out);
  assert.deepEqual([...m.without!], [5, 5, 5, 5]);
  assert.equal(m.sole, prompt);
});

test('a mixer knows its sole voice, and none when two spoke', () => {
  const m = new Mixer(2);
  const a = constant(1);
  const b = constant(2);
  m.add(a);
  m.add(b);
  const out = new Int16Array(2);
  m.mix(out);
  assert.equal(m.sole, null);
  b.v = null;
  m.mix(out);
  assert.equal(m.sole, a);
  assert.deepEqual([...out], [1, 1]);
});
