// Docker cannot run here (no daemon), so the Dockerfile is checked by reading it: every COPY
// source exists in the build context (and is not excluded by .dockerignore) or is something the
// build stage produces; the build context holds every file the compiled code imports; the
// runtime has what the agent executes; the DaemonSet's commands and image tag match the image.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { VERSION } from '../../../agent/constants.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Stage { name: string; from: string; workdir: string; lines: string[] }

function stages(): Stage[] {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const out: Stage[] = [];
  const globalArgs = new Map<string, string>();   // ARGs before the first FROM, with their defaults
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) {
      const image = from[1]!.replace(/\$\{(\w+)\}/g, (_, name: string) => globalArgs.get(name) ?? `\${${name}}`);
      out.push({ name: from[2] ?? `stage${out.length}`, from: image, workdir: '/', lines: [] });
      continue;
    }
    const st = out[out.length - 1];
    if (!st) {
      const arg = /^ARG\s+(\w+)=(\S+)$/.exec(line);
      if (arg) globalArgs.set(arg[1]!, arg[2]!);
      continue;
    }
    const wd = /^WORKDIR\s+(\S+)$/.exec(line);
    if (wd) st.workdir = wd[1]!;
    st.lines.push(line);
  }
  return out;
}

interface Copy { from: string | undefined; srcs: string[]; dest: string; stage: Stage }

function copies(): Copy[] {
  return stages().flatMap((st) => st.lines.flatMap((l) => {
    const m = /^COPY\s+((?:--\S+\s+)*)(.+)$/.exec(l);
    if (!m) return [];
    const from = /--from=(\S+)/.exec(m[1]!)?.[1];
    const parts = m[2]!.split(/\s+/);
    return [{ from, srcs: parts.slice(0, -1), dest: parts[parts.length - 1]!, stage: st }];
  }));
}

function dockerignored(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  return patterns.some((p) => {
    if (p.includes('*')) return new RegExp('^' + p.replace(/\./g, '\\.').replace(/\*/g, '[^/]*') + '$').test(path.split('/').pop()!);
    return path === p || path.startsWith(p + '/');
  });
}

/** What the build stage's `npm run build` leaves in dist/ (from tsconfig and build-cni.sh). */
function buildOutputs(): string[] {
  const tsc = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8')) as { compilerOptions: { outDir: string } };
  const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
  const cniOut = /out=\$\{TWILL_CNI_OUT:-([^}]+)\}/.exec(readFileSync(join(ROOT, 'scripts/build-cni.sh'), 'utf8'))?.[1];
  return [...build.include.map((d) => `${tsc.compilerOptions.outDir}/${d}`), ...(cniOut ? [cniOut] : [])];
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? tsFiles(p) : f.endsWith('.ts') && !f.endsWith('.test.ts') ? [p] : [];
  });
}

describe('Dockerfile', () => {
  it('is multi-stage on node:22-bookworm-slim with build, prod-deps and runtime stages', () => {
    const s = stages();
    expect(s.map((x) => x.name)).toEqual(['build', 'prod-deps', 'stage2']);
    for (const st of s) expect(st.from).toBe('node:22-bookworm-slim');
    expect(s[0]!.lines).toEqual(expect.arrayContaining(['RUN npm ci --no-audit --no-fund']));
    expect(s[0]!.lines.some((l) => l.startsWith('RUN npm run build'))).toBe(true);
    expect(s[1]!.lines.some((l) => /npm ci --omit=dev/.test(l))).toBe(true);
    const runtime = s[2]!.lines.join('\n');
    for (const pkg of ['nftables', 'iptables', 'iproute2', 'tini']) expect(runtime).toMatch(new RegExp(`apt-get install[^\\n]*\\b${pkg}\\b`));
    expect(runtime).toMatch(/^ENTRYPOINT \["\/usr\/bin\/tini", "--", "twilld"\]$/m);
    expect(runtime).toMatch(/ln -s \/app\/bin\/twilld\.js \/usr\/local\/bin\/twilld/);
  });

  it('copies only paths that exist in the context or that the build produces', () => {
    const outputs = buildOutputs();
    const byName = new Map(stages().map((s) => [s.name, s]));
    for (const c of copies()) {
      for (const src of c.srcs) {
        if (c.from === undefined) {
          expect(existsSync(join(ROOT, src)), `COPY ${src}: missing from the repository`).toBe(true);
          expect(dockerignored(normalize(src)), `COPY ${src}: excluded by .dockerignore`).toBe(false);
        } else if (c.from === 'build') {
          const rel = relative(byName.get('build')!.workdir, src);
          expect(outputs.some((o) => rel === o || rel.startsWith(o + '/')), `COPY --from=build ${src}: not a build output (${outputs.join(', ')})`).toBe(true);
        } else {
          expect(byName.has(c.from), `COPY --from=${c.from}: no such stage`).toBe(true);
          expect(src.startsWith(byName.get(c.from)!.workdir)).toBe(true);
        }
      }
    }
    expect(buildOutputs()).toContain('dist/cni/twill');
  });

  it('the build context holds every source the compiled code imports', () => {
    const copied = copies().filter((c) => c.from === undefined && c.stage.name === 'build').flatMap((c) => c.srcs).map((s) => normalize(s).replace(/\/$/, ''));
    for (const dir of ['agent', 'cni', 'lib']) {
      expect(copied).toContain(dir);
      for (const f of tsFiles(join(ROOT, dir))) {
        for (const m of readFileSync(f, 'utf8').matchAll(/(?:from\s+|import\()\s*'(\.[^']+)'/g)) {
          const target = relative(ROOT, join(dirname(f), m[1]!));
          expect(copied.some((d) => target === d || target.startsWith(d + '/')), `${relative(ROOT, f)} imports ${target}, which the build stage does not copy`).toBe(true);
        }
      }
    }
    // the CNI build script's own inputs
    const cniScript = readFileSync(join(ROOT, 'scripts/build-cni.sh'), 'utf8');
    for (const m of cniScript.matchAll(/\$root\/((?:lib|cni|agent)\/[\w/.-]+\.ts)/g)) expect(existsSync(join(ROOT, m[1]!)), m[1]).toBe(true);
    expect(copied).toContain('scripts');
  });

  it('the DaemonSet runs what the image holds, with the image tagged as the agent version', () => {
    const ds = parse(readFileSync(join(ROOT, 'deploy/daemonset.yaml'), 'utf8')) as { spec: { template: { spec: { initContainers: { image: string; command: string[] }[]; containers: { image: string }[] } } } };
    const pod = ds.spec.template.spec;
    const dests = copies().filter((c) => c.stage.name === 'stage2').map((c) => c.dest);
    expect(dests).toContain(pod.initContainers[0]!.command[0]);
    for (const c of [...pod.initContainers, ...pod.containers]) expect(c.image).toMatch(new RegExp(`:${VERSION.replace(/\./g, '\\.')}$`));
  });
});
