// The tier's workloads and how their results are read. kubectl logs/exec cannot reach kubelets
// behind slirp, so each writer pod prints its results to stdout, and the guests copy every pod's
// log to their second serial port (guest/node-init.sh), a file on the host the test reads.
// A writer keeps a random blob on its volume with its sha256 beside it: on first start it writes
// both and prints `MSCHECK wrote <sha>`; on every later start it prints `MSCHECK found <sha of the
// blob> <sha it wrote>`. A volume that came back empty would print `wrote` again: the test sees it.
import { existsSync, readFileSync } from 'node:fs';
import { BUSYBOX_IMAGE } from './paths.ts';

export interface CheckLine {
  pod: string;
  kind: 'wrote' | 'found' | 'size' | 'block' | 'readonly';
  values: string[];
}

/** A shell loop for a filesystem volume at /data: write once (MiB of random data), verify at start. */
export function fileWriterScript(mib: number): string {
  return [
    'set -e',
    'if [ -f /data/blob.sha256 ]; then',
    '  echo "MSCHECK found $(sha256sum /data/blob | cut -d" " -f1) $(cut -d" " -f1 /data/blob.sha256)"',
    'else',
    `  head -c ${mib * 1048576} /dev/urandom > /data/blob && sync`,
    '  sha256sum /data/blob > /data/blob.sha256.tmp && sync && mv /data/blob.sha256.tmp /data/blob.sha256 && sync',
    '  echo "MSCHECK wrote $(cut -d" " -f1 /data/blob.sha256)"',
    'fi',
    // keep appending small records while running (the volume is in use when it is drained), and
    // report the file system's size when it changes (online expansion)
    'last=0',
    'while true; do',
    '  date >> /data/ticks; sync',
    "  size=$(df -k /data | tail -n 1 | awk '{print $2}')",
    '  if [ "$size" != "$last" ]; then echo "MSCHECK size $size"; last=$size; fi',
    '  sleep 5',
    'done',
  ].join('\n');
}

/** A StatefulSet of one pod with a claim template; the pod runs fileWriterScript. */
export function writerStatefulSet(name: string, storageClass: string, sizeMi: number, mib: number): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: 'default' },
    spec: {
      serviceName: name,
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: {
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'writer',
              image: BUSYBOX_IMAGE,
              imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', fileWriterScript(mib)],
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
        },
      },
      volumeClaimTemplates: [
        {
          metadata: { name: 'data' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            storageClassName: storageClass,
            resources: { requests: { storage: `${sizeMi}Mi` } },
          },
        },
      ],
    },
  };
}

/**
 * containerd's timestamp of a CRI log line (`<RFC 3339 with nanoseconds> stdout F <text>`), its
 * fraction padded to nine digits so that the strings order as the times do.
 */
function criTime(line: string): string {
  const m = / (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z /.exec(line);
  return m ? `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}` : '';
}

/**
 * Every MSCHECK line printed by `pod` (namespace/name) in the given guests' log files, oldest
 * first. A pod that moved printed on several nodes: the lines are ordered by containerd's
 * timestamps, not by which node's file they came from.
 */
export function checkLines(logFiles: string[], pod: string): CheckLine[] {
  const found: { at: string; line: CheckLine }[] = [];
  const prefix = `pod:${pod}/`;
  for (const f of logFiles) {
    if (!existsSync(f)) continue;
    const text = readFileSync(f, 'utf8');
    // whole lines only: the guest may be writing the last one as it is read (nodes22 read a
    // "found" line cut in its second sha256 and failed scenario 2)
    for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
      if (!line.startsWith(prefix)) continue;
      const at = line.indexOf('MSCHECK ');
      if (at < 0) continue;
      const [kind, ...values] = line
        .slice(at + 8)
        .trim()
        .split(/\s+/);
      found.push({ at: criTime(line), line: { pod, kind: kind as CheckLine['kind'], values } });
    }
  }
  // stable: lines of one file without a timestamp keep their order
  return found.sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0)).map((x) => x.line);
}

/**
 * A one-container busybox pod that runs `script` with one claim, used as `use` says (volumeMounts or
 * volumeDevices), and stays up so its log can be read.
 */
function scriptPod(
  name: string,
  container: string,
  script: string[],
  use: { volumeMounts: object[] } | { volumeDevices: object[] },
  claimSource: { claimName: string; readOnly?: boolean },
): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 5,
      containers: [
        {
          name: container,
          image: BUSYBOX_IMAGE,
          imagePullPolicy: 'Never',
          command: ['/bin/sh', '-c', [...script, 'sleep 100000'].join('\n')],
          ...use,
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: claimSource }],
    },
  };
}

/** A pod with a raw block volume at /dev/xvda: writes MiB of random data, reads it back, prints both sums. */
export function blockPod(name: string, claim: string, mib: number): object {
  const script = [
    'set -e',
    `head -c ${mib * 1048576} /dev/urandom > /tmp/blob`,
    'dd if=/tmp/blob of=/dev/xvda bs=1M oflag=direct conv=fsync 2> /dev/null',
    `echo "MSCHECK block $(sha256sum /tmp/blob | cut -d" " -f1) $(dd if=/dev/xvda bs=1M count=${mib} iflag=direct 2> /dev/null | sha256sum | cut -d" " -f1)"`,
  ];
  return scriptPod(
    name,
    'block',
    script,
    { volumeDevices: [{ name: 'data', devicePath: '/dev/xvda' }] },
    { claimName: claim },
  );
}

/** A pod mounting a filesystem claim read-only: prints the blob's sum and whether a write was refused. */
export function readOnlyPod(name: string, claim: string): object {
  const script = [
    'if touch /data/should-fail 2> /dev/null; then refused=no; else refused=yes; fi',
    'echo "MSCHECK readonly $(sha256sum /data/blob | cut -d" " -f1) $(cut -d" " -f1 /data/blob.sha256) $refused"',
  ];
  return scriptPod(
    name,
    'reader',
    script,
    { volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }] },
    { claimName: claim, readOnly: true },
  );
}

/** A claim (no pod yet: WaitForFirstConsumer binds it with its first pod). */
export function claim(
  name: string,
  storageClass: string,
  sizeMi: number,
  volumeMode: 'Filesystem' | 'Block',
): object {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name, namespace: 'default' },
    spec: {
      accessModes: ['ReadWriteOnce'],
      storageClassName: storageClass,
      volumeMode,
      resources: { requests: { storage: `${sizeMi}Mi` } },
    },
  };
}
