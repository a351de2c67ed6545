// Test certificates made by the openssl command line (P-256 keys, 30 days): a CA and the server and
// client certificates it signs. Used by the control plane's PKI (test/cluster/control-plane.ts),
// the extender's mutual TLS in the cluster tier and the extender's door tests. Test material only.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Paths of a PEM certificate and its private key. */
export interface Pem {
  cert: string;
  key: string;
}

export function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA as `<name>.crt` and `<name>.key` in `dir` (made with mode 0700). */
export function makeCa(dir: string, name: string, commonName: string): Pem {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  openssl(
    ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '30'].concat([
      '-subj',
      `/CN=${commonName}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]),
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/**
 * A certificate signed by `ca`, as `<name>.crt` and `<name>.key` in `dir`: for a server (with
 * subjectAltNames such as `IP:127.0.0.1`, `DNS:x.svc`) or a client (subject like `/CN=name`).
 */
export function issue(
  dir: string,
  ca: Pem,
  name: string,
  o: { subject: string; usage: 'server' | 'client'; sans?: string[] },
): Pem {
  const ext =
    `keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${o.usage === 'server' ? 'serverAuth' : 'clientAuth'}\n` +
    (o.sans?.length ? `subjectAltName=${o.sans.join(',')}\n` : '');
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(['req', '-new', ...EC, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', o.subject], dir);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial'].concat([
      '-out',
      `${name}.crt`,
      '-days',
      '30',
      '-extfile',
      `${name}.ext`,
    ]),
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** The extender's mutual-TLS material: one CA, the extender's serving cert, kube-scheduler's client cert. */
export interface ExtenderPki {
  ca: Pem;
  server: Pem;
  client: Pem;
}

/** Makes ExtenderPki in `dir`, the serving cert valid for `sans` (default 127.0.0.1 and localhost). */
export function makeExtenderPki(dir: string, sans = ['IP:127.0.0.1', 'DNS:localhost']): ExtenderPki {
  const ca = makeCa(dir, 'extender-ca', 'meshstor-extender-test-ca');
  return {
    ca,
    server: issue(dir, ca, 'extender', {
      subject: '/CN=meshstor-extender',
      usage: 'server',
      sans,
    }),
    client: issue(dir, ca, 'scheduler-client', { subject: '/CN=kube-scheduler', usage: 'client' }),
  };
}
