#!/usr/bin/env node
// The one binary: `meshstor <subcommand>`. Each subcommand lives in its own module and is loaded
// only when used, so `meshstor simulate` never loads Kubernetes or gRPC code. Exit codes by error
// type: 0 done, 2 a usage error (bad flags), 1 bad input (a scenario file) or a failure.
import { ScenarioError } from '../simulations/scenario.ts';
import { type Command, InputError, UsageError } from './cli.ts';

const COMMANDS: Record<string, { about: string; load: () => Promise<Command> }> = {
  simulate: {
    about: 'compare placement policies on a scenario (default: the embedded one)',
    load: async () => (await import('./simulate.ts')).simulateCommand,
  },
  controller: {
    about: 'the CSI Identity and Controller services, and the deletion and relocation reconcilers',
    load: async () => (await import('./controller.ts')).controllerCommand,
  },
  extender: {
    about: 'the kube-scheduler extender (filter, prioritize) for MeshStor volumes',
    load: async () => (await import('./extender.ts')).extenderCommand,
  },
  agent: {
    about: 'the node agent: the CSI Node service, exports, relocation steps, the MeshStorNode heartbeat',
    load: async () => (await import('./agent.ts')).agentCommand,
  },
  drain: {
    about: 'plan (and with --yes run) moving every MeshStor replica off a node',
    load: async () => (await import('./drain.ts')).drainCommand,
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
  const entry = COMMANDS[name];
  if (!entry) {
    console.error(`meshstor: unknown command "${name}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await (await entry.load()).run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`meshstor ${name}: ${e.message}\nRun 'meshstor ${name} --help'.`);
      return 2;
    }
    if (e instanceof ScenarioError || e instanceof InputError) {
      console.error(`meshstor ${name}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) process.exitCode = await main(process.argv.slice(2));
