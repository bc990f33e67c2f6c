import { defineConfig } from 'vitest/config';

// Three projects split by privilege (DESIGN style 15):
//   unit        no root, memory kernel, in-process fakes; parallel
//   integration root: fresh netns per test, real etcd, the real CNI executable
//   e2e         root: a multi-node cluster in network namespaces; one file at a time
//   cluster     root: a real Kubernetes cluster (test/cluster), upstream conformance; last
// Groups run in that order (groupOrder), so the heavy ones never compete for the 2 cores.
export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000, sequence: { groupOrder: 0 } } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 240_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 900_000,
          fileParallelism: false,
          sequence: { groupOrder: 3 },
        },
      },
    ],
  },
});
