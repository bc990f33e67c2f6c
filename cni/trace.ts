// TWILL_CNI_TRACE=1: one stderr line per invocation with the time of each step since process
// start (process.uptime), to see where an ADD or DEL spends its time on a real node. Off by
// default; marks cost a branch each.
import { writeSync } from 'node:fs';

const on = process.env['TWILL_CNI_TRACE'] === '1';
const marks: string[] = [];

export function mark(step: string): void {
  if (!on) return;
  const cpu = process.cpuUsage();
  marks.push(`${step}=${(process.uptime() * 1000).toFixed(1)}/${((cpu.user + cpu.system) / 1000).toFixed(1)}`);
}

export function flushTrace(): void {
  if (on && marks.length) writeSync(2, `twill trace (ms since start, wall/cpu): ${marks.join(' ')}\n`);
}
