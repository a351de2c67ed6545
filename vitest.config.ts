import { defineConfig } from 'vitest/config';

// One vitest project per test tier, so `npm test` can run each tier on its own and
// report why a tier whose prerequisites are missing did not run.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            'placement/**/*.test.ts',
            'simulations/**/*.test.ts',
            'cmd/**/*.test.ts',
            'scheduler/**/*.test.ts',
            'kube/**/*.test.ts',
            'test/unit/**/*.test.ts',
          ],
          environment: 'node',
        },
      },
      {
        // Real etcd, kube-apiserver, kube-scheduler and kube-controller-manager (npm run setup:cluster),
        // started once for the tier by the global setup; files run one after another against it.
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.test.ts'],
          environment: 'node',
          globalSetup: ['test/cluster/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
