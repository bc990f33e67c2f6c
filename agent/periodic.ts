// The agent's periodic tasks, each a loop of "sleep, then run" until the signal aborts: the full
// kernel resync, the rules and subnet-file check, the store probe, the heap check. A task's
// failure is the caller's to judge (run through the daemon's guard).
import type { Clock } from '../lib/retry.js';

export interface PeriodicTask {
  name: string;
  everyMs: number;
  run(signal: AbortSignal): unknown;
}

export async function runEvery(task: PeriodicTask, clock: Clock, signal: AbortSignal): Promise<void> {
  for (;;) {
    await clock.sleep(task.everyMs, signal);
    await task.run(signal);
  }
}
