import { describe, expect, it } from 'vitest';
import { runCni } from '../../../cni/plugin.js';
import { COMMANDS, HOT_COMMANDS } from '../../../cni/cmd/index.js';

// runCni() with a partial command table, as the compiled executable's ADD/DEL bundle runs it
// (HOT_COMMANDS, cni/runtime/bun.ts): what the table lacks is a clear internal error, never a crash.
const env = { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: 'c1', CNI_IFNAME: 'eth0', CNI_NETNS: '/var/run/netns/x', CNI_PATH: '/opt/cni/bin' };
const conf = JSON.stringify({ cniVersion: '1.0.0', name: 'n', type: 'twill', prevResult: { cniVersion: '1.0.0', ips: [] } });
const noDeps = () => Promise.reject(new Error('no kernel in this test'));

describe('runCni (command table)', () => {
  it('answers VERSION without any command', async () => {
    const out = await runCni({ CNI_COMMAND: 'VERSION' }, '{"cniVersion":"0.4.0"}', noDeps, {});
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ cniVersion: '0.4.0', supportedVersions: expect.arrayContaining(['1.1.0']) });
  });

  it('reports a command the entry does not serve as an internal spec error', async () => {
    const out = await runCni(env, conf, noDeps, { ADD: COMMANDS.ADD! });
    expect(out.code).toBe(1);
    expect(JSON.parse(out.stdout)).toMatchObject({ code: 999, msg: expect.stringContaining('CHECK: not served by this entry') });
  });

  it('the full table serves every command', () => {
    expect(Object.keys(COMMANDS).sort()).toEqual(['ADD', 'CHECK', 'DEL', 'GC', 'STATUS']);
  });

  it('the hot table is ADD and DEL of the full table', () => {
    expect(HOT_COMMANDS).toEqual({ ADD: COMMANDS.ADD, DEL: COMMANDS.DEL });
  });
});
