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
            'test/unit/**/*.test.ts',
          ],
          environment: 'node',
        },
      },
    ],
  },
});
