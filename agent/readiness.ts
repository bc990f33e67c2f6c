// Readiness: the conditions of start-up, in order, and the problems seen on the way. One reason
// per condition that failed, each the error seen for it, and nothing else: a condition still
// waiting behind a failed one is not a second reason. Only while nothing has failed are the
// pending steps listed, by name. Problems of parts outside start-up (e.g. NetworkPolicy) come last.
import { errorMessage } from '../lib/errors.js';
import type { ReadyConditions } from './state.js';

const STEPS: readonly [cond: keyof ReadyConditions | 'interface', problemKey: string, pending: string][] = [
  ['interface', 'interface', 'underlay interface not selected yet'],
  ['store', 'store', 'lease store not contacted yet'],
  ['config', 'config', 'network config not loaded yet'],
  ['lease', 'lease', 'no subnet lease yet'],
  ['subnetFile', 'subnetFile', 'subnet file not written yet'],
  ['firstReconcile', 'reconcile', 'first full reconcile not done yet'],
  ['trafficRules', 'traffic', 'traffic rules not installed yet'],
];
const ORDER = new Map(STEPS.map(([, key], i) => [key, i]));

export class Readiness {
  readonly conditions: ReadyConditions = { config: false, lease: false, subnetFile: false, firstReconcile: false, trafficRules: false, store: false };
  private interfaceSelected = false;
  private readonly problems = new Map<string, string>();
  private readonly onChange: (ready: boolean, reasons: string[]) => void;

  constructor(onChange: (ready: boolean, reasons: string[]) => void) {
    this.onChange = onChange;
  }

  cond(name: keyof ReadyConditions | 'interface', v: boolean): void {
    if (name === 'interface') this.interfaceSelected = v; else this.conditions[name] = v;
    this.refresh();
  }

  /** A reason not to be ready (undefined clears it). */
  problem(key: string, reason: string | undefined): void {
    if (reason === undefined) this.problems.delete(key); else this.problems.set(key, reason);
    this.refresh();
  }

  storeAnswered(): void {
    this.problem('store', undefined);
    this.cond('store', true);
  }

  storeFailed(err: unknown): void {
    this.problem('store', `lease store unreachable: ${errorMessage(err)}`);
    this.cond('store', false);
  }

  /** Recomputes readiness and reports it (every change does; call once to report the initial state). */
  refresh(): void {
    const ok = (c: keyof ReadyConditions | 'interface') => (c === 'interface' ? this.interfaceSelected : this.conditions[c]);
    const failed = [...this.problems].sort(([a], [b]) => (ORDER.get(a) ?? STEPS.length) - (ORDER.get(b) ?? STEPS.length)).map(([, r]) => r);
    const reasons = failed.length > 0 ? failed : STEPS.filter(([c]) => !ok(c)).map(([, , pending]) => pending);
    this.onChange(reasons.length === 0, reasons);
  }
}
