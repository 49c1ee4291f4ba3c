import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds of a process and its children that were reaped or are alive (mediasoup workers). */
export function treeCpuSeconds(pid: number, childPids: number[]): number {
  return [pid, ...childPids].reduce((s, p) => {
    try {
      return s + cpuSeconds(p);
    } catch {
      return s;
    }
  }, 0);
}

export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)/.exec(status)?.[1];
  return Number(kb) * 1024;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** The middle value; of an even count, the mean of the two in the middle (not the upper one). */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : sorted.length ? (sorted[mid - 1]! + sorted[mid]!) / 2 : NaN;
}

/** Proportional set size: the process's private pages plus its share of pages other processes map too. */
export function pssBytes(pid: number): number {
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = /^Pss:\s+(\d+)/m.exec(rollup)?.[1];
  return Number(kb) * 1024;
}

/** A process's children (forked shards, mediasoup workers), from /proc. */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** The process's command name (/proc/pid/comm). */
export function commOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/**
 * Nanoseconds the process's main thread (its event loop) spent ready to run while the machine
 * ran something else, from /proc/<pid>/task/<pid>/schedstat (the scheduler's own count). On a
 * shared box, each such wait delays every packet and frame the loop would have handled.
 */
export function runqueueWaitNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return NaN;
  }
}

/** Microseconds, machine-wide, during which at least one task waited for a CPU (/proc/pressure/cpu). */
export function cpuPressureUs(): number {
  try {
    return Number(/^some .*total=(\d+)/m.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC), the same in every process:
 * for times one process stamps and another compares. `performance.timeOrigin + now()` is not:
 * each process fixes its origin against the wall clock at start, and two origins differed by
 * enough here to make a one-way latency's median negative.
 */
export function sharedClockMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Times a process's main thread went to sleep and was woken (its voluntary context switches). */
export function wakeups(pid: number): number {
  return Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'))?.[1]);
}

/** The nice value of a process's main thread (field 19 of its stat). */
export function niceOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}
