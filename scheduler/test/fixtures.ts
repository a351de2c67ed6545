// Plain objects as the informers deliver them, for the extender's unit tests and the bench.
import type { WirePod } from '../wire.ts';

export { msNode, msVolume } from '../../state/test/crd-fixtures.ts';

export function pod(name: string, claims: string[], namespace = 'default'): WirePod {
  return {
    metadata: { name, namespace, uid: `uid-${name}` },
    spec: {
      containers: [{ name: 'c', image: 'x' }],
      volumes: [
        { name: 'scratch', emptyDir: {} },
        ...claims.map((claimName, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName } })),
      ],
    },
  };
}
