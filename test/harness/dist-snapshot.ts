// The agent the cluster runs is `node bin/twilld.js` from the build (dist/). Several people and
// tools rebuild dist/ while long e2e runs are going (the build starts with `rm -rf dist/agent
// dist/lib`), which made agents started mid-run die on a missing module. So each test process
// runs a private, verified copy of bin/ + dist/agent + dist/lib + dist/test/util taken once, under
// .tmp/ inside the checkout (so node_modules and package.json "type" still resolve), removed on
// exit. TWILL_E2E_USE_DIST=1 runs straight from dist/ instead.
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { AGENT_MAIN, REPO_ROOT, TWILLD_BIN } from './paths.js';
import { onProcessExit } from './procs.js';

export interface AgentBuild {
  twilldBin: string;          // <root>/bin/twilld.js
  agentMain: string;          // <root>/dist/agent/main.js
  fakeApiserverMain: string;  // <root>/dist/test/util/fake-apiserver-main.js
}

const PARTS = ['bin/twilld.js', 'dist/agent', 'dist/lib', 'dist/test/util'];
let cached: AgentBuild | undefined;

const buildAt = (root: string): AgentBuild => ({
  twilldBin: join(root, 'bin', 'twilld.js'),
  agentMain: join(root, 'dist', 'agent', 'main.js'),
  fakeApiserverMain: join(root, 'dist', 'test', 'util', 'fake-apiserver-main.js'),
});

function jsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return e.isDirectory() ? jsFiles(p) : e.name.endsWith('.js') ? [p] : [];
  });
}

/** Relative imports that do not resolve to a file: a build caught half-way. */
function missingImports(root: string): string[] {
  const missing: string[] = [];
  for (const f of [join(root, 'bin', 'twilld.js'), ...jsFiles(join(root, 'dist'))]) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)['"](\.\.?\/[^'"]+)['"]/g)) {
      const target = resolve(dirname(f), m[1]!);
      if (!existsSync(target)) missing.push(`${f.slice(root.length + 1)} → ${m[1]}`);
    }
  }
  return missing;
}

/** The agent build to run: a verified private snapshot of the current dist/ (see above). */
export async function agentBuild(): Promise<AgentBuild> {
  if (process.env.TWILL_E2E_USE_DIST === '1') return { ...buildAt(REPO_ROOT), twilldBin: TWILLD_BIN, agentMain: AGENT_MAIN };
  if (cached) return cached;
  if (!existsSync(AGENT_MAIN)) throw new Error(`${AGENT_MAIN} is missing: run \`npm run build\` first`);
  const root = join(REPO_ROOT, '.tmp', 'e2e-dist', `${process.pid}-${randomBytes(3).toString('hex')}`);
  onProcessExit(() => rmSync(root, { recursive: true, force: true }));
  let problems: string[] = [];
  for (let attempt = 0; attempt < 30; attempt++) {
    rmSync(root, { recursive: true, force: true });
    mkdirSync(root, { recursive: true });
    try {
      for (const p of PARTS) if (existsSync(join(REPO_ROOT, p))) cpSync(join(REPO_ROOT, p), join(root, p), { recursive: true });
      problems = existsSync(join(root, 'dist', 'agent', 'main.js')) ? missingImports(root) : ['dist/agent/main.js'];
    } catch (err) {
      problems = [(err as Error).message];     // a file vanished while copying
    }
    if (problems.length === 0) {
      cached = buildAt(root);
      return cached;
    }
    await new Promise((r) => setTimeout(r, 2000));      // a build is running: let it finish
  }
  throw new Error(`dist/ stayed incomplete for 60 s (is a build failing?): ${problems.slice(0, 5).join('; ')}`);
}

