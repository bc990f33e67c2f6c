import { createRequire } from 'node:module';
import { expect, it } from 'vitest';

it('importing the netlink index does not load koffi (CNI start-up stays cheap)', async () => {
  const mod = await import('../../../lib/netlink/index.js');
  expect(typeof mod.openHandle).toBe('function');
  expect(typeof mod.MemoryKernel).toBe('function');
  const cache = createRequire(import.meta.url).cache;
  expect(Object.keys(cache).filter((k) => k.includes('koffi'))).toEqual([]);
});
