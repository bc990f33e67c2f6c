// JSON.parse with a useful error: V8 on Node 20 does not always say where the problem is
// ("Unexpected token '}', ... is not valid JSON"), and an operator editing net-conf.json in
// etcd needs a line and column. On failure only, a small scanner finds the offending offset.
import { invalid } from '../errors.js';

const WS = new Set([' ', '\t', '\n', '\r']);
const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** Offset of the first syntax error in `text` (text.length for "unexpected end"), or -1. */
export function jsonErrorOffset(text: string): number {
  let i = 0;
  const ws = () => { while (i < text.length && WS.has(text[i]!)) i++; };
  const fail = (at: number): never => { throw at; };
  const str = () => {
    i++; // opening quote
    for (;;) {
      if (i >= text.length) fail(i);
      const c = text[i]!;
      if (c === '"') { i++; return; }
      if (c < ' ') fail(i);
      if (c === '\\') {
        const e = text[i + 1];
        if (e === 'u') { if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) fail(i); i += 6; continue; }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) fail(i);
        i += 2; continue;
      }
      i++;
    }
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === undefined) fail(i);
    if (c === '{') return container('}', true);
    if (c === '[') return container(']', false);
    if (c === '"') return str();
    for (const lit of ['true', 'false', 'null']) if (text.startsWith(lit, i)) { i += lit.length; return; }
    NUMBER.lastIndex = i;
    if (NUMBER.test(text)) { i = NUMBER.lastIndex; return; }
    fail(i);
  };
  const container = (close: string, isObject: boolean): void => {
    i++; ws();
    if (text[i] === close) { i++; return; }
    for (;;) {
      if (isObject) {
        ws();
        if (text[i] !== '"') fail(i);
        str(); ws();
        if (text[i] !== ':') fail(i);
        i++;
      }
      value(); ws();
      if (text[i] === ',') { i++; continue; }
      if (text[i] === close) { i++; return; }
      fail(i);
    }
  };
  try {
    value(); ws();
    return i < text.length ? i : -1;
  } catch (at) {
    return typeof at === 'number' ? at : 0;
  }
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, col: offset - (before.lastIndexOf('\n') + 1) + 1 };
}

/** Parses JSON or throws CONFIG_INVALID naming the document, the spot and the parser's reason. */
export function parseJsonDocument(text: string, field: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const at = Math.max(0, jsonErrorOffset(text));
    const { line, col } = lineCol(text, at);
    const near = text.slice(Math.max(0, at - 15), at + 15).replace(/\s+/g, ' ');
    const why = err instanceof Error ? err.message.replace(/, ".*" is not valid JSON$/s, '') : String(err);
    const where = at >= text.length ? `at the end (line ${line} column ${col})` : `at line ${line} column ${col} (offset ${at})`;
    throw invalid(field, near, `malformed JSON ${where}: ${why}`);
  }
}
