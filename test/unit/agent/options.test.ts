// twilld flags: every FLAGS entry settable from the environment with its type, the command line
// winning over the environment, repeatable list flags, errors that name the flag and the value,
// and --help / --version as the real entry point (agent/main.ts, run from source by bun).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FLAGS, envName, parseOptions, type AgentOptions, type FlagSpec } from '../../../agent/options.js';
import { VERSION } from '../../../agent/constants.js';
import { REPO_ROOT } from '../../util/pods.js';

// Written out here rather than imported, so a broken mapping in options.ts cannot hide itself.
const envOf = (flag: string) => `TWILLD_${flag.toUpperCase().replace(/-/g, '_')}`;
const keyOf = (flag: string) => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof AgentOptions;

/** A raw environment value for each type and what it must parse to. */
function sample(f: FlagSpec): { raw: string; want: unknown } {
  switch (f.type) {
    case 'list': return { raw: `${f.name}-a, ${f.name}-b`, want: [`${f.name}-a`, `${f.name}-b`] };
    case 'bool': return { raw: 'true', want: true };
    case 'int': case 'duration': return { raw: '7', want: 7 };
    default: return f.name === 'log-level' ? { raw: 'debug', want: 'debug' } : { raw: `/env/${f.name}`, want: `/env/${f.name}` };
  }
}

/** agent/main.ts run from source (bun runs TypeScript directly; no build needed). */
function twilld(...args: string[]) {
  const r = spawnSync(join(REPO_ROOT, 'node_modules/.bin/bun'), [join(REPO_ROOT, 'agent/main.ts'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' }, timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const parseError = (argv: string[], env: NodeJS.ProcessEnv = {}): { code?: string; message: string } => {
  try { parseOptions(argv, env); } catch (err) { return err as { code?: string; message: string }; }
  throw new Error(`parseOptions(${JSON.stringify(argv)}) accepted it`);
};

describe('twilld options: environment', () => {
  it('every flag is settable as TWILLD_<FLAG> with its type (list, bool, int, string)', () => {
    expect(FLAGS.map((f) => f.type)).toEqual(expect.arrayContaining(['list', 'bool', 'int', 'string']));
    const env: NodeJS.ProcessEnv = {};
    for (const f of FLAGS) env[envOf(f.name)] = sample(f).raw;
    const o = parseOptions([], env);
    for (const f of FLAGS) {
      expect(envName(f.name)).toBe(envOf(f.name));
      expect(o[keyOf(f.name)], `${envOf(f.name)}=${sample(f).raw}`).toEqual(sample(f).want);
    }
  });

  it('reads booleans in every accepted spelling, and false overrides a default', () => {
    for (const t of ['1', 'true', 'TRUE', 'yes', 'on']) expect(parseOptions([], { TWILLD_IP_MASQ: t }).ipMasq, t).toBe(true);
    for (const f of ['0', 'false', 'No', 'off']) expect(parseOptions([], { TWILLD_KUBE_SUBNET_MGR: f }).kubeSubnetMgr, f).toBe(false);
    expect(parseOptions([], { TWILLD_IP_MASQ: '' }).ipMasq).toBe(false);   // empty env = unset
  });

  it('keeps the defaults when nothing is set', () => {
    const o = parseOptions([], {});
    for (const f of FLAGS) expect(o[keyOf(f.name)], f.name).toEqual(f.default);
  });
});

describe('twilld options: command line', () => {
  it('the command line wins over the environment, for every type', () => {
    const env = { TWILLD_ETCD_PREFIX: '/env', TWILLD_IFACE: 'env0,env1', TWILLD_IP_MASQ: 'true', TWILLD_HEALTHZ_PORT: '1111' };
    const o = parseOptions(['--etcd-prefix', '/cli', '--iface', 'cli0', '--ip-masq=false', '--healthz-port=2222'], env);
    expect([o.etcdPrefix, o.iface, o.ipMasq, o.healthzPort]).toEqual(['/cli', ['cli0'], false, 2222]);
  });

  it('repeated --iface and --iface-regex accumulate in order, comma lists included', () => {
    const o = parseOptions(['--iface', 'eth0', '--iface=10.0.0.1,eth2', '--iface', 'eth3', '--iface-regex', '^en', '--iface-regex', '^wl'], {});
    expect(o.iface).toEqual(['eth0', '10.0.0.1', 'eth2', 'eth3']);
    expect(o.ifaceRegex).toEqual(['^en', '^wl']);
    expect(parseOptions(['--etcd-prefix', '/a', '--etcd-prefix', '/b'], {}).etcdPrefix).toBe('/b');   // scalars: last one wins
  });

  it('a bare boolean flag is true, and -flag works like --flag', () => {
    expect(parseOptions(['--ip-masq', '-kube-subnet-mgr'], {})).toMatchObject({ ipMasq: true, kubeSubnetMgr: true });
  });

  it.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    ['a non-integer --healthz-port', ['--healthz-port', 'abc'], {}, /^--healthz-port: "abc" is invalid: must be a non-negative whole number$/],
    ['a negative --resync-interval', ['--resync-interval=-5'], {}, /^--resync-interval: "-5" is invalid: must be a non-negative whole number$/],
    ['a non-integer TWILLD_HEALTHZ_PORT', [], { TWILLD_HEALTHZ_PORT: '80x' }, /^TWILLD_HEALTHZ_PORT: "80x" is invalid/],
    ['an out-of-range --healthz-port', ['--healthz-port', '70000'], {}, /^--healthz-port: 70000 is invalid: must be 0\.\.65535$/],
    ['a zero --resync-interval', ['--resync-interval', '0'], {}, /^--resync-interval: 0 is invalid: must be at least 1 second$/],
    ['a zero --iptables-resync', ['--iptables-resync', '0'], {}, /^--iptables-resync: 0 is invalid/],
    ['a bad boolean', ['--ip-masq=maybe'], {}, /^--ip-masq: "maybe" is invalid: must be true or false$/],
    ['a bad TWILLD_IP_MASQ', [], { TWILLD_IP_MASQ: 'maybe' }, /^TWILLD_IP_MASQ: "maybe" is invalid/],
    ['an unknown flag', ['--no-such-flag'], {}, /^flag: "--no-such-flag" is invalid: unknown flag \(see --help\)$/],
    ['an unknown flag with a value', ['--ifaces=eth0'], {}, /^flag: "--ifaces" is invalid: unknown flag/],
    ['a positional argument', ['eth0'], {}, /^argument: "eth0" is invalid: expected --flag/],
    ['a flag missing its value', ['--etcd-prefix'], {}, /^--etcd-prefix: "" is invalid: needs a value$/],
    ['an unknown log level', ['--log-level', 'loud'], {}, /^--log-level: "loud" is invalid: must be one of trace, debug/],
    ['a broken --iface-regex', ['--iface-regex', '(eth'], {}, /^--iface-regex: "\(eth" is invalid: not a valid regular expression/],
  ])('rejects %s with an error naming the flag and the value', (_, argv, env, message) => {
    const err = parseError(argv, env);
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toMatch(message);
  });
});

describe('twilld --help / --version (agent/main.ts)', () => {
  it('--help lists every flag with its help text and default, and exits 0', () => {
    const r = twilld('--help');
    expect(r.code, r.stderr).toBe(0);
    for (const f of FLAGS) {
      const line = r.stdout.split('\n').find((l) => l.trimStart().startsWith(`--${f.name} `));
      expect(line, `--${f.name} missing from --help`).toBeDefined();
      expect(line).toContain(f.help);
      const d = Array.isArray(f.default) ? f.default.join(',') : f.default;
      if (d !== undefined && d !== '') expect(line).toContain(`(default ${String(d)})`);
    }
    expect(r.stdout).toContain('TWILLD_<FLAG>');
  });

  it('--version prints the version (the package version) and exits 0', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
    const r = twilld('--version');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`twilld ${VERSION}\n`);
    expect(twilld('--version', '--iface', 'eth0').stdout).toBe(`twilld ${VERSION}\n`);
  });

  it('an invalid flag exits 2 with the message on stderr and nothing on stdout', () => {
    const r = twilld('--healthz-port', 'abc');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('twilld: --healthz-port: "abc" is invalid: must be a non-negative whole number\n');
  });
});
