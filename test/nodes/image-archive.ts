// A one-layer image archive (the docker-archive layout `ctr images import` takes) from a directory,
// with no container engine: layer.tar of the directory, an image config naming its diff id and
// entrypoint, and manifest.json with the image's name. For the tier's small images (pause, busybox,
// the CSI sidecars built from their Go modules); MeshStor's own image comes from `npm run image`.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ImageSpec {
  /** directory that becomes the image's root filesystem */
  root: string;
  /** the image reference, e.g. registry.k8s.io/pause:3.10 */
  name: string;
  entrypoint?: string[];
  cmd?: string[];
}

function tar(args: string[]): void {
  const r = spawnSync('tar', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

export function writeImageArchive(spec: ImageSpec, out: string): void {
  const work = mkdtempSync(join(tmpdir(), 'meshstor-image-'));
  try {
    // fixed owners and times: the same directory gives the same layer digest
    tar([
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '--mtime=@0',
      '--sort=name',
      '-C',
      spec.root,
      '-cf',
      join(work, 'layer.tar'),
      '.',
    ]);
    const diffId = `sha256:${createHash('sha256')
      .update(readFileSync(join(work, 'layer.tar')))
      .digest('hex')}`;
    const config = JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        ...(spec.entrypoint ? { Entrypoint: spec.entrypoint } : {}),
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
      },
      rootfs: { type: 'layers', diff_ids: [diffId] },
      created: '1970-01-01T00:00:00Z',
    });
    const configName = `${createHash('sha256').update(config).digest('hex')}.json`;
    writeFileSync(join(work, configName), config);
    writeFileSync(
      join(work, 'manifest.json'),
      JSON.stringify([{ Config: configName, RepoTags: [spec.name], Layers: ['layer.tar'] }]),
    );
    tar([
      '--numeric-owner',
      '--owner=0',
      '--group=0',
      '-C',
      work,
      '-cf',
      out,
      'manifest.json',
      configName,
      'layer.tar',
    ]);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
