import { describe, expect, it } from 'vitest';
import { runCniWith } from '../../../cni/dispatch.js';
import { ALL_COMMANDS } from '../../../cni/plugin.js';

// dispatch.ts with a partial command table, as cni/hot.ts (the compiled executable's ADD/DEL
// entry) runs it: what the table lacks is a clear internal error, never a crash.
const env = { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/var/run/netns/x', CNI_PATH: '/opt/cni/bin' };
const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'twill', prevResult: { cniVersion: '1.0.0', ips: [] } });
const noDeps = () => Promise.reject(new Error('no kernel in this test'));

describe('runCniWith (command table)', () => {
  it('answers VERSION without any command', async () => {
    const out = await runCniWith({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', noDeps, {});
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ cniVersion: '0.4.0', supportedVersions: expect.arrayContaining(['1.1.0']) });
  });

  it('reports a command the entry does not serve as an internal spec error', async () => {
    const out = await runCniWith(env, conf, noDeps, { ADD: ALL_COMMANDS.ADD! });
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 999, msg: expect.stringContaining('CHECK: not served by this entry') });
  });

  it('the full table serves every command', () => {
    expect(Object.keys(ALL_COMMANDS).sort()).toEqual(['ADD', 'CHECK', 'DEL', 'GC', 'STATUS']);
  });
});
