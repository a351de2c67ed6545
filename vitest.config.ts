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
            'csi/**/*.test.ts',
            'state/**/*.test.ts',
            'controller/**/*.test.ts',
            'scheduler/**/*.test.ts',
            'kube/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'agent/**/*.test.ts',
          ],
          environment: 'node',
          // Some unit tests spawn the CLI; on a loaded 2-core machine that exceeds vitest's 5 s default.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'sanity',
          include: ['test/sanity/**/*.test.ts'],
          environment: 'node',
          testTimeout: 15 * 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'kernel',
          include: ['test/kernel/**/*.test.ts'],
          environment: 'node',
          // each test sets its own timeout, a backstop above the budget test/kernel/budget.ts gives
          // its case (scaled by the measured boot); no guest runs in a hook (a hook that timed out
          // would leave its tests reported as skipped). The hooks only stop guests and clean up.
          testTimeout: 10 * 60_000,
          hookTimeout: 5 * 60_000,
        },
      },
      {
        // Real nodes: qemu guests running kubelet + containerd, MeshStor installed by its chart
        // (npm run setup:nodes). Tests run in order on one cluster; each has its own timeout.
        test: {
          name: 'nodes',
          include: ['test/nodes/**/*.test.ts'],
          environment: 'node',
          testTimeout: 30 * 60_000,
          hookTimeout: 5 * 60_000,
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
