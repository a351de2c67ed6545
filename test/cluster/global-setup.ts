// vitest globalSetup of the `cluster` project: one real control plane for the whole tier, with
// kube-scheduler running OUR KubeSchedulerConfiguration (deploy/scheduler/kube-scheduler-config.yaml)
// pointed at a loopback port where the tests run the extender, over mutual TLS with certificates
// made here (the extender's CA, its serving certificate, kube-scheduler's client certificate), and
// the CRDs applied.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { parse } from 'yaml';
import { type ExtenderPki, makeExtenderPki } from '../tls.ts';
import { missingBinaries } from './binaries.ts';
import { type ControlPlane, freePort, startControlPlane } from './control-plane.ts';
import { applyCrds } from './kube.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: {
      kubeconfig: string;
      apiUrl: string;
      extenderPort: number;
      /** PEM files of the extender's mutual TLS, as kube-scheduler was configured with them. */
      extenderPki: ExtenderPki;
      dir: string;
      logs: string;
    };
  }
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface ExtenderEntry {
  urlPrefix: string;
  enableHTTPS?: boolean;
  tlsConfig?: { caFile?: string; certFile?: string; keyFile?: string };
}

/**
 * Points the extenders of a shipped configuration at `host:port` (default loopback): over mutual
 * TLS with `pki`'s files in place of the in-cluster paths (the shipped settings otherwise
 * unchanged), or, without `pki`, over plain HTTP (benchmarks, with `meshstor extender --insecure-http`).
 */
export function pointExtenders(
  extenders: ExtenderEntry[],
  port: number,
  pki?: ExtenderPki,
  host = '127.0.0.1',
): void {
  for (const e of extenders) {
    if (pki) {
      if (!e.enableHTTPS || !e.tlsConfig) throw new Error('the shipped extender configuration has no TLS');
      e.urlPrefix = `https://${host}:${port}`;
      e.tlsConfig = { caFile: pki.ca.cert, certFile: pki.client.cert, keyFile: pki.client.key };
    } else {
      e.urlPrefix = `http://${host}:${port}`;
      e.enableHTTPS = false;
      delete e.tlsConfig;
    }
  }
}

/** Our shipped scheduler configuration, with the extender pointed at `port` on loopback. */
export function schedulerConfigFor(port: number, pki?: ExtenderPki): Record<string, unknown> {
  const cfg = parse(readFileSync(join(root, 'deploy/scheduler/kube-scheduler-config.yaml'), 'utf8')) as {
    extenders: ExtenderEntry[];
  };
  pointExtenders(cfg.extenders, port, pki);
  return cfg as unknown as Record<string, unknown>;
}

let cp: ControlPlane | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const missing = missingBinaries();
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run npm run setup:cluster`);
  const extenderPort = await freePort();
  const pkiDir = mkdtempSync(join(tmpdir(), 'meshstor-extender-pki-'));
  const extenderPki = makeExtenderPki(pkiDir);
  const t0 = Date.now();
  cp = await startControlPlane({
    schedulerConfig: schedulerConfigFor(extenderPort, extenderPki),
    keep: process.env.MESHSTOR_KEEP_CLUSTER === '1',
  });
  await applyCrds(cp.kubeconfig);
  console.log(`control plane up in ${Date.now() - t0} ms (${cp.dir}; logs in ${cp.logs})`);
  project.provide('cluster', {
    kubeconfig: cp.kubeconfig,
    apiUrl: cp.apiUrl,
    extenderPort,
    extenderPki,
    dir: cp.dir,
    logs: cp.logs,
  });
  return async () => {
    await cp?.stop();
    rmSync(pkiDir, { recursive: true, force: true });
  };
}
