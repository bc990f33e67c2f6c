// Label selectors with the exact meaning metav1.LabelSelector has for NetworkPolicy: every
// matchLabels pair AND every matchExpressions requirement must hold; `{}` selects everything.
// A selector is checked once (selectorProblem) and then compiled into a predicate, so matching a
// thousand pods does not re-validate it a thousand times.
import type { LabelSelector } from './types.js';

export type Labels = Readonly<Record<string, string>>;
export type LabelPredicate = (labels: Labels) => boolean;

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist']);

/** What is wrong with a selector twill would have to guess about, as [field suffix, reason]; else undefined. */
export function selectorProblem(sel: LabelSelector): [string, string] | undefined {
  const exprs = sel.matchExpressions ?? [];
  for (const [i, e] of exprs.entries()) {
    const at = `.matchExpressions[${i}]`;
    if (typeof e.key !== 'string' || e.key === '') return [`${at}.key`, 'must be a non-empty label key'];
    if (!OPERATORS.has(e.operator)) return [`${at}.operator`, `"${String(e.operator)}" is not one of In, NotIn, Exists, DoesNotExist`];
    const n = e.values?.length ?? 0;
    if ((e.operator === 'In' || e.operator === 'NotIn') && n === 0) return [`${at}.values`, `must be non-empty for ${e.operator}`];
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && n > 0) return [`${at}.values`, `must be empty for ${e.operator}`];
  }
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) {
    if (typeof v !== 'string') return [`.matchLabels.${k}`, 'must be a string'];
  }
  return undefined;
}

/** The predicate of a selector that selectorProblem accepted. */
export function compileSelector(sel: LabelSelector): LabelPredicate {
  const pairs = Object.entries(sel.matchLabels ?? {});
  const exprs = (sel.matchExpressions ?? []).map((e) => ({ key: e.key, op: e.operator, values: new Set(e.values ?? []) }));
  if (pairs.length === 0 && exprs.length === 0) return () => true;
  return (labels) => {
    for (const [k, v] of pairs) if (labels[k] !== v) return false;
    for (const e of exprs) {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key);
      const v = labels[e.key];
      switch (e.op) {
        case 'In': if (!has || v === undefined || !e.values.has(v)) return false; break;
        case 'NotIn': if (has && v !== undefined && e.values.has(v)) return false; break;
        case 'Exists': if (!has) return false; break;
        case 'DoesNotExist': if (has) return false; break;
        default: return false;
      }
    }
    return true;
  };
}
