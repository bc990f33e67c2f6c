// TWILL_CNI_TRACE=1: one stderr line per invocation with the time of each step since process
// start (process.uptime), CPU time and minor page faults so far (a short-lived process pays
// most of its system time in page faults), to see where an ADD or DEL spends its time on a real node. Off by
// default; marks cost a branch each.
import { pluginFs } from './fs.js';

const on = process.env['TWILL_CNI_TRACE'] === '1';
const marks: string[] = [];

export function mark(step: string): void {
  if (!on) return;
  const ru = process.resourceUsage();
  marks.push(`${step}=${(process.uptime() * 1000).toFixed(1)}/${((ru.userCPUTime + ru.systemCPUTime) / 1000).toFixed(1)}/${ru.minorPageFault}`);
}

export function flushTrace(): void {
  if (on && marks.length) pluginFs().write(2, `twill trace (ms since start, wall/cpu ms/minor faults): ${marks.join(' ')}\n`);
}
