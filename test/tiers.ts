// The test tiers `npm test` runs, in order. A tier whose prerequisites are missing is skipped
// with the reason printed; under CI=true a tier marked requiredInCI fails the run instead.
// Later tiers (real control plane, csi-sanity) add an entry here.
import { kernelTierMissing } from './kernel/harness.ts';

export interface Tier {
  name: string;
  /** What the tier proves, one line. */
  about: string;
  /** The command, as argv. Vitest tiers get a JSON report appended so tests can be counted. */
  command: string[];
  /** The vitest project, when the tier is a vitest project (used to count its tests). */
  vitestProject?: string;
  requiredInCI: boolean;
  /** Resolves to a reason the tier cannot run here, or undefined when it can. */
  missing(): Promise<string | undefined>;
}

const always = async () => undefined;

export const TIERS: Tier[] = [
  {
    name: 'static',
    about: 'biome lint/format check and tsc strict type check',
    command: ['sh', '-c', 'biome check . && tsc -p tsconfig.json'],
    requiredInCI: true,
    missing: always,
  },
  {
    name: 'unit',
    about: 'placement engine (incl. fast-check properties), simulations, CLI, Host contract on SimulatedHost',
    command: ['vitest', 'run', '--project', 'unit'],
    vitestProject: 'unit',
    requiredInCI: true,
    missing: always,
  },
  {
    name: 'kernel',
    about: 'Host contract + data-path scenarios through LinuxHost on Debian 6.12 in qemu',
    command: ['vitest', 'run', '--project', 'kernel'],
    vitestProject: 'kernel',
    requiredInCI: true,
    missing: async () => kernelTierMissing(),
  },
];
