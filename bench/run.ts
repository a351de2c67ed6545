// `npm run bench`: every benchmark, one after the other, with the machine it ran on.
import { cpus, loadavg } from 'node:os';
import { benchPlacement } from './placement.ts';

const log = (line: string) => console.log(line);
log(
  `bench: node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
log('\n== placement');
await benchPlacement(log);
