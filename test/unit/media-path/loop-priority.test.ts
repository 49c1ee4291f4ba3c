import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { applyNice, raiseLoopPriority } from '../../../src/media-path/loop-priority.ts';
import { captureLogging } from '../../helpers/capture-logging.ts';

/** Field 19 of /proc/<pid>/task/<tid>/stat, read after the command name (which may hold spaces). */
function niceOf(tid: number): number {
  const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

function refusing(after: number): { set: (tid: number, nice: number) => void; calls: number[] } {
  const calls: number[] = [];
  return {
    calls,
    set: (tid) => {
      calls.push(tid);
      if (calls.length > after) throw Object.assign(new Error('setpriority EACCES'), { code: 'EACCES' });
    },
  };
}

describe('media loop priority', () => {
  test('stops at the first refusal and says how many threads it set', () => {
    const r = refusing(2);
    const outcome = applyNice([11, 12, 13, 14], -10, r.set);
    assert.equal(outcome.set, 2);
    assert.equal(outcome.refused?.code, 'EACCES');
    assert.deepEqual(r.calls, [11, 12, 13]);
  });

  test('0 leaves the inherited priority alone', () => {
    const r = refusing(0);
    const { logger: log, lines } = captureLogging();
    assert.equal(raiseLoopPriority(0, log, { threads: () => [1, 2], set: r.set }), null);
    assert.deepEqual(r.calls, []);
    assert.equal(lines.length, 0);
  });

  test('a refusal is logged with how to allow it, and the service goes on', () => {
    const r = refusing(0);
    const { logger: log, lines } = captureLogging();
    const outcome = raiseLoopPriority(-10, log, { threads: () => [7, 8], set: r.set });
    assert.equal(outcome?.refused?.code, 'EACCES');
    const line = lines.find((l) => l.event === 'MEDIA_PRIORITY_NOT_SET');
    assert.ok(line, JSON.stringify(lines));
    assert.match(String(line.message), /nice -10 was refused \(EACCES\).*ulimit nice=30.*MEDIA_PRIORITY=0/);
  });

  test('every thread of the process gets the value (read back from /proc)', () => {
    // A positive value needs no privilege; this file runs in a process of its own.
    const { logger: log, lines } = captureLogging();
    const outcome = raiseLoopPriority(7, log);
    assert.equal(outcome?.refused, null);
    const tids = readdirSync('/proc/self/task').map(Number);
    assert.ok(tids.length > 1, 'Node runs helper threads beside the main one');
    assert.equal(outcome?.set, tids.length);
    for (const tid of tids) assert.equal(niceOf(tid), 7, `thread ${tid}`);
    assert.equal(lines.find((l) => l.event === 'MEDIA_PRIORITY_SET')?.message, 'the media loop runs at nice 7');
  });
});
