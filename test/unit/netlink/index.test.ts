import { createRequire } from 'node:module';
import { expect, it } from 'vitest';

it('importing the netlink handle and the memory kernel does not load koffi (CNI start-up stays cheap)', async () => {
  const handle = await import('../../../lib/netlink/handle.js');
  const memory = await import('../../../lib/netlink/memory.js');
  expect(typeof handle.openHandle).toBe('function');
  expect(typeof memory.MemoryKernel).toBe('function');
  const cache = createRequire(import.meta.url).cache;
  expect(Object.keys(cache).filter((k) => k.includes('koffi'))).toEqual([]);
});
