#!/usr/bin/env node
// The one binary: `meshstor <subcommand>`. Each subcommand lives in its own module and is loaded
// only when used, so `meshstor simulate` never loads Kubernetes or gRPC code.
import { ScenarioError } from '../simulations/scenario.ts';
import { UsageError } from './simulate.ts';

const COMMANDS: Record<string, { about: string; run: (argv: string[]) => Promise<number> }> = {
  simulate: {
    about: 'compare placement policies on a scenario (default: the embedded one)',
    run: async (argv) => (await import('./simulate.ts')).simulateCommand(argv),
  },
  controller: {
    about: 'serve the CSI Identity and Controller services (in-memory state for now)',
    run: async (argv) => (await import('./controller.ts')).controllerCommand(argv),
  },
  extender: {
    about: 'the kube-scheduler extender (filter, prioritize) for MeshStor volumes',
    run: async (argv) => (await import('./extender.ts')).runExtender(argv),
  },
  agent: {
    about: 'serve the CSI Node service (SimulatedHost for now; --with-controller for one-node trials)',
    run: async (argv) => (await import('./agent.ts')).agentCommand(argv),
  },
};

const USAGE = `usage: meshstor <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(12)}${c.about}`)
  .join('\n')}

Run 'meshstor <command> --help' for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    console.error(`meshstor: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (e instanceof ScenarioError) console.error(`meshstor ${name}: ${e.message}`);
    else if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`meshstor ${name}: ${(e as Error).message}\nRun 'meshstor ${name} --help'.`);
      return 2;
    } else if (e instanceof Error && /^cannot read scenario file/.test(e.message))
      console.error(`meshstor ${name}: ${e.message}`);
    else throw e;
    return 1;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
