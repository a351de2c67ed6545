// Data-path scenarios of issue 4, run in the VM through LinuxHost with sha256 checksums.
export interface Scenario {
  name: string;
  run(): Promise<unknown>;
}

export const SCENARIOS: Scenario[] = [];
