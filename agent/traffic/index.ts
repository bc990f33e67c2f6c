// Picks the traffic-rules backend: nftables when `nft` runs and the kernel answers it, else the
// iptables fallback. The choice is made once at start; both backends install the same policy
// (rules.ts).
import { TwillError } from '../../lib/errors.js';
import { createIptablesRules, iptablesBinary } from './iptables.js';
import { createRunner, type Runner } from './exec.js';
import { createNftRules } from './nft.js';
import type { TrafficBackend, TrafficOptions, TrafficRules } from './types.js';

export type { TrafficSpec, TrafficRules, TrafficBackend, TrafficOptions } from './types.js';
export { renderNftTable, renderNftTransaction } from './nft.js';
export { normalizeSpec } from './rules.js';

async function works(run: Runner, cmd: string, args: string[]): Promise<boolean> {
  try {
    await run(cmd, args);
    return true;
  } catch {
    return false;
  }
}

/**
 * Removes twill's rules from every backend that works here (for `twilld --cleanup`): the agent
 * may have used the other backend than the one createTrafficRules would pick now. Returns the
 * backends it cleaned.
 */
export async function removeAllTrafficRules(opts: TrafficOptions): Promise<TrafficBackend[]> {
  const run = createRunner(opts.netns);
  const log = opts.logger.child({ component: 'traffic' });
  const done: TrafficBackend[] = [];
  if (await works(run, 'nft', ['list', 'tables'])) {
    await createNftRules(run, log).remove();
    done.push('nftables');
  }
  const variant = opts.iptables ?? 'default';
  if (await works(run, iptablesBinary(4, variant, '-save'), [])) {
    await createIptablesRules(run, log, variant).remove();
    done.push('iptables');
  }
  return done;
}

export async function createTrafficRules(opts: TrafficOptions): Promise<TrafficRules> {
  const run = createRunner(opts.netns);
  const variant = opts.iptables ?? 'default';
  const log = opts.logger.child({ component: 'traffic' });
  if (opts.prefer !== 'iptables') {
    if (await works(run, 'nft', ['list', 'tables'])) return createNftRules(run, log);
    log.warn('nft is not usable here; falling back to iptables');
  }
  if (await works(run, iptablesBinary(4, variant, '-save'), [])) return createIptablesRules(run, log, variant);
  throw new TwillError('BACKEND', `traffic rules: neither nft nor ${iptablesBinary(4, variant, '')} is usable${opts.netns ? ` in netns ${opts.netns}` : ''}; install nftables or iptables`);
}
