#!/usr/bin/env node
// `meshstor <subcommand>`: the one MeshStor binary.
import { runExtender } from './extender.ts';

const USAGE = `usage: meshstor <subcommand> [flags]
subcommands:
  extender   the kube-scheduler extender (filter, prioritize) for MeshStor volumes`;

const [sub, ...rest] = process.argv.slice(2);
let code: number;
switch (sub) {
  case 'extender':
    code = await runExtender(rest).catch((e: unknown) => {
      console.error(`meshstor extender: ${e instanceof Error ? e.message : String(e)}`);
      return 1;
    });
    break;
  default:
    console.error(sub ? `meshstor: unknown subcommand ${sub}\n${USAGE}` : USAGE);
    code = 2;
}
process.exitCode = code;
