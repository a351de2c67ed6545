// vitest globalSetup of the `cluster` project: one real control plane for the whole tier, with
// kube-scheduler running OUR KubeSchedulerConfiguration (deploy/scheduler/kube-scheduler-config.yaml)
// pointed at a loopback port where the tests run the extender, and the CRDs applied.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { parse } from 'yaml';
import { missingBinaries } from './binaries.ts';
import { type ControlPlane, freePort, startControlPlane } from './control-plane.ts';
import { applyCrds } from './kube.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: { kubeconfig: string; apiUrl: string; extenderPort: number; dir: string; logs: string };
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Our shipped scheduler configuration, with the extender's URL pointed at `port` on loopback. */
export function schedulerConfigFor(port: number): Record<string, unknown> {
  const cfg = parse(readFileSync(join(root, 'deploy/scheduler/kube-scheduler-config.yaml'), 'utf8')) as {
    extenders: { urlPrefix: string }[];
  };
  for (const e of cfg.extenders) e.urlPrefix = `http://127.0.0.1:${port}`;
  return cfg as unknown as Record<string, unknown>;
}

let cp: ControlPlane | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing = missingBinaries();
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run npm run setup:cluster`);
  const extenderPort = await freePort();
  const t0 = Date.now();
  cp = await startControlPlane({
    schedulerConfig: schedulerConfigFor(extenderPort),
    keep: process.env.MESHSTOR_KEEP_CLUSTER === '1',
  });
  await applyCrds(cp.kubeconfig);
  console.log(`control plane up in ${Date.now() - t0} ms (${cp.dir}; logs in ${cp.logs})`);
  project.provide('cluster', {
    kubeconfig: cp.kubeconfig,
    apiUrl: cp.apiUrl,
    extenderPort,
    dir: cp.dir,
    logs: cp.logs,
  });
  return async () => {
    await cp?.stop();
  };
}
