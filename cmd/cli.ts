// The one framework every subcommand uses: typed flags declared once (parsed, checked and turned
// into a camelCase config), generated --help, --log-level and one pino logger, and one UsageError.
// Exit codes come from error types (cmd/meshstor.ts), never from message text.
import { parseArgs } from 'node:util';
import { type Logger, makeLogger } from '../kube/log.ts';
import { parseBytes } from '../placement/units.ts';

/** Bad flags or arguments: the command prints it with a pointer to --help and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Bad input the command was pointed at (a scenario file, say): exit 1 with the message only. */
export class InputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputError';
  }
}

type FlagKind = 'string' | 'boolean' | 'integer' | 'bytes' | 'list';
type ValueOf<K extends FlagKind> = K extends 'boolean'
  ? boolean
  : K extends 'integer' | 'bytes'
    ? number
    : K extends 'list'
      ? string[]
      : string;

export interface Flag<K extends FlagKind = FlagKind> {
  kind: K;
  /** One line (or a few) for --help. */
  about: string;
  /** What the value looks like in --help, e.g. PATH. */
  placeholder?: string;
  default?: ValueOf<K>;
  /** An environment variable that supplies the value when the flag is absent. */
  env?: string;
  required?: boolean;
  /** Allowed values of a string flag. */
  choices?: readonly string[];
  /** Bounds of an integer flag. */
  min?: number;
  max?: number;
  short?: string;
}

type Camel<S extends string> = S extends `${infer Head}-${infer Tail}`
  ? `${Head}${Capitalize<Camel<Tail>>}`
  : S;

type Flags = Record<string, Flag>;
/** The parsed config: camelCase keys; a flag with a default or `required` is always present. */
export type ConfigOf<F extends Flags> = {
  [K in keyof F & string as Camel<K>]: F[K] extends { default: unknown } | { required: true }
    ? ValueOf<F[K]['kind']>
    : ValueOf<F[K]['kind']> | undefined;
} & { logLevel: string };

export interface CommandSpec<F extends Flags> {
  name: string;
  /** One line for `meshstor --help`. */
  about: string;
  /** Paragraphs for the command's --help, after the usage line. */
  description?: string;
  /** Positional arguments, for the usage line and help (e.g. '[SCENARIO.yaml]'). */
  positionals?: { usage: string; max: number };
  flags: F;
  run(config: ConfigOf<F>, context: { log: Logger; positionals: string[] }): Promise<number>;
}

export interface Command {
  name: string;
  about: string;
  help(): string;
  run(argv: string[]): Promise<number>;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

function helpText<F extends Flags>(spec: CommandSpec<F>, flags: Flags): string {
  const rows = Object.entries(flags).map(([name, f]) => {
    const left = `${f.short ? `-${f.short}, ` : ''}--${name}${f.kind === 'boolean' ? '' : ` ${f.placeholder ?? f.kind.toUpperCase()}`}`;
    const extra = [
      f.choices ? `one of: ${f.choices.join(', ')}` : '',
      f.default !== undefined && f.kind !== 'boolean' ? `default: ${String(f.default)}` : '',
      f.env ? `or $${f.env}` : '',
      f.required ? 'required' : '',
      f.kind === 'list' ? 'repeatable' : '',
    ].filter(Boolean);
    const about = `${f.about}${extra.length ? ` (${extra.join('; ')})` : ''}`;
    return { left, about };
  });
  const width = Math.min(32, Math.max(...rows.map((r) => r.left.length)) + 2);
  const lines = rows.map(({ left, about }) => {
    const pad = left.length + 2 > width ? `\n${' '.repeat(width + 2)}` : ' '.repeat(width - left.length);
    return `  ${left}${pad}${about.replace(/\n/g, `\n${' '.repeat(width + 2)}`)}`;
  });
  const usage = `usage: meshstor ${spec.name}${spec.positionals ? ` ${spec.positionals.usage}` : ''} [options]`;
  return [usage, '', spec.about, spec.description ? `\n${spec.description}` : '', '', 'options:', ...lines]
    .filter((l, i, all) => !(l === '' && all[i - 1] === ''))
    .join('\n');
}

function convert(name: string, f: Flag, raw: string | boolean | string[]): unknown {
  if (f.kind === 'boolean' || f.kind === 'list') return raw;
  const text = String(raw);
  if (f.kind === 'integer') {
    const n = Number(text);
    if (!Number.isInteger(n)) throw new UsageError(`--${name} ${text}: not a whole number`);
    if ((f.min !== undefined && n < f.min) || (f.max !== undefined && n > f.max))
      throw new UsageError(`--${name} ${text}: must be ${f.min ?? '-∞'}..${f.max ?? '∞'}`);
    return n;
  }
  if (f.kind === 'bytes') {
    try {
      return parseBytes(text);
    } catch (e) {
      throw new UsageError(`--${name}: ${(e as Error).message}`);
    }
  }
  if (f.choices && !f.choices.includes(text))
    throw new UsageError(`--${name} ${text}: use ${f.choices.join(' or ')}`);
  return text;
}

/** Defines a subcommand; --help and --log-level are added to every one. */
export function defineCommand<F extends Flags>(spec: CommandSpec<F>): Command {
  const flags: Flags = {
    ...spec.flags,
    'log-level': {
      kind: 'string',
      about: 'log level of the JSON logs on stderr',
      placeholder: 'LEVEL',
      default: 'info',
      env: 'MESHSTOR_LOG_LEVEL',
      choices: LOG_LEVELS,
    },
    help: { kind: 'boolean', about: 'this text', short: 'h' },
  };
  const help = () => helpText(spec, flags);
  return {
    name: spec.name,
    about: spec.about,
    help,
    async run(argv) {
      let parsed: ReturnType<typeof parseArgs>;
      try {
        parsed = parseArgs({
          args: argv,
          allowPositionals: !!spec.positionals,
          strict: true,
          options: Object.fromEntries(
            Object.entries(flags).map(([name, f]) => [
              name,
              {
                type: f.kind === 'boolean' ? ('boolean' as const) : ('string' as const),
                multiple: f.kind === 'list',
                ...(f.short ? { short: f.short } : {}),
              },
            ]),
          ),
        });
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
      const values = parsed.values as Record<string, string | boolean | string[] | undefined>;
      if (values.help) {
        console.log(help());
        return 0;
      }
      const positionals = parsed.positionals;
      if (spec.positionals && positionals.length > spec.positionals.max)
        throw new UsageError(`too many arguments: ${positionals.join(' ')}`);
      const config: Record<string, unknown> = {};
      for (const [name, f] of Object.entries(flags)) {
        if (name === 'help') continue;
        let raw = values[name];
        if (raw === undefined && f.env && process.env[f.env]) raw = process.env[f.env];
        if (raw === undefined) {
          if (f.required) throw new UsageError(`--${name} is required`);
          config[camel(name)] = f.kind === 'list' ? (f.default ?? []) : f.default;
          continue;
        }
        config[camel(name)] = convert(name, f, raw);
      }
      const log = makeLogger(spec.name, String(config.logLevel));
      return spec.run(config as ConfigOf<F>, { log, positionals });
    },
  };
}

/** How long a server may take to stop after SIGTERM before the process exits anyway. */
export const STOP_GRACE_MS = 20_000;

/**
 * Resolves with the signal's name at the first SIGTERM or SIGINT, and makes sure the process ends:
 * a second signal exits at once, and so does a stop that takes longer than `exitAfterMs` (a hung
 * host call, or work Node cannot cancel, such as a file-system call stuck in the kernel, would
 * otherwise keep the process alive for ever). The timer is unref'd: a clean stop is not delayed.
 */
export function untilStopSignal({ exitAfterMs = STOP_GRACE_MS } = {}): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string) => {
      process.removeListener('SIGTERM', onTerm);
      process.removeListener('SIGINT', onInt);
      const force = (why: string) => {
        process.stderr.write(`meshstor: ${why}; exiting now\n`);
        process.exit(1);
      };
      process.once('SIGTERM', () => force('second SIGTERM while stopping'));
      process.once('SIGINT', () => force('second SIGINT while stopping'));
      setTimeout(() => force(`still stopping ${exitAfterMs} ms after ${signal}`), exitAfterMs).unref();
      resolve(signal);
    };
    const onTerm = () => stop('SIGTERM');
    const onInt = () => stop('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
  });
}
