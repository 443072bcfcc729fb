import { parseArgs } from 'node:util';
import { CliError } from './errors.js';
import type { Io } from './io.js';

/** One option: what node:util's parseArgs needs, plus what `--help` prints. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** The value's placeholder in the help (`FILE`, `URL`); string options only. */
  value?: string;
  description: string;
  /** Printed only in the help of these variants (`veil apply -f X --help`: genservice or mesh). */
  only?: readonly string[];
}

export type OptionsSpec = Record<string, OptionSpec>;

/**
 * One declarative spec per command: the same object parses the command line and prints `--help`, so the two
 * cannot drift (spec.test.ts walks every command).
 */
export interface CommandSpec<O extends OptionsSpec = OptionsSpec> {
  /** The words after `veil`: `cas chart`. */
  name: string;
  /** What follows the name in the usage line(s). */
  usage: readonly string[];
  summary: string;
  options: O;
  positionals?: boolean;
  /** Lines printed after the options: how options SCONE documents apply (or why they cannot). */
  notes?: readonly string[];
}

export type Parsed<O extends OptionsSpec> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

export interface Command {
  spec: CommandSpec;
  /** A variant's help (apply: the options of the manifest's kind), given the parsed command line. */
  variantHelp?: (parsed: Parsed<OptionsSpec>, io: Io) => string | undefined;
  run(args: string[], io: Io): Promise<number>;
}

/** A command: `run` gets the parsed values; `--help`/`-h` print the spec; errors name the command. */
export function defineCommand<const O extends OptionsSpec>(
  spec: CommandSpec<O>,
  run: (parsed: Parsed<O>, io: Io) => Promise<number> | number,
  opts: { variantHelp?: (parsed: Parsed<O>, io: Io) => string | undefined } = {},
): Command {
  const command: Command = {
    spec,
    run: async (args, io) => {
      const parsed = parseCommand(spec, args);
      if ((parsed.values as Record<string, unknown>)[HELP] === true) {
        io.out(opts.variantHelp?.(parsed, io) ?? helpText(spec));
        return 0;
      }
      delete (parsed.values as Record<string, unknown>)[HELP];
      return await namedErrors(spec.name, () => run(parsed, io));
    },
  };
  if (opts.variantHelp) command.variantHelp = opts.variantHelp as Command['variantHelp'];
  return command;
}

const HELP = 'help';

/** `-h` means help unless the command gives it another meaning (sconectl apply: `-h` is `--helm-template`). */
function withHelp(options: OptionsSpec): OptionsSpec {
  const clashes = Object.values(options).some((o) => o.short === 'h');
  return { ...options, [HELP]: { type: 'boolean', ...(clashes ? {} : { short: 'h' }), description: 'this help' } };
}

export function parseCommand<O extends OptionsSpec>(spec: CommandSpec<O>, args: string[]): Parsed<O> {
  const options = Object.fromEntries(
    Object.entries(withHelp(spec.options)).map(([name, o]) => [
      name,
      { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
    ]),
  );
  try {
    return parseArgs({ args, options, allowPositionals: spec.positionals === true, strict: true }) as Parsed<O>;
  } catch (err) {
    throw parseError(spec.name, err);
  }
}

function parseError(name: string, err: unknown): unknown {
  const code = (err as { code?: string }).code ?? '';
  if (!code.startsWith('ERR_PARSE_ARGS')) return err;
  const text = (err as Error).message;
  const quoted = /'([^']+)'/.exec(text)?.[1] ?? '';
  const what =
    code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
      ? `unknown option '${quoted}'`
      : code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL'
        ? `unexpected argument '${quoted}' (this command takes options only)`
        : / argument missing/.test(text)
          ? `option '${quoted.replace(/ <value>$/, '')}' needs a value`
          : / does not take an argument/.test(text)
            ? `option '${quoted}' takes no value`
            : text;
  return usageOf(name, what, err);
}

/** `veil cas chart: unknown option '--foo' — run 'veil cas chart --help'` (exit 2). */
export function usageOf(name: string, what: string, cause?: unknown): CliError {
  return new CliError('CLI_USAGE', `veil ${name}: ${what} — run 'veil ${name} --help'`, {
    hint: `'veil ${name} --help' lists its options`,
    ...(cause ? { cause } : {}),
  });
}

/** A usage error thrown inside a command gets the command's name in front, once. */
export async function namedErrors<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (err) {
    if (err instanceof CliError && err.code === 'CLI_USAGE' && !err.message.startsWith('veil '))
      throw new CliError('CLI_USAGE', `veil ${name}: ${err.message}`, {
        ...(err.hint ? { hint: err.hint } : {}),
        cause: err,
      });
    throw err;
  }
}

export function helpText(spec: CommandSpec, variant?: string): string {
  const usage = spec.usage.map((u, i) => `${i === 0 ? 'Usage: ' : '       '}veil ${spec.name} ${u}`.trimEnd());
  const options = Object.entries(withHelp(spec.options)).filter(
    ([, o]) => variant === undefined || !o.only || o.only.includes(variant),
  );
  const lines = options.map(([name, o]) => [optionLabel(name, o), o.description] as const);
  const width = Math.min(34, Math.max(...lines.map(([label]) => label.length)) + 2);
  const body = lines.map(([label, text]) => formatOption(label, text, width));
  const notes = spec.notes?.length ? ['', ...spec.notes.map((n) => `  ${n}`)] : [];
  return `${[...usage, '', spec.summary, '', 'Options:', ...body, ...notes].join('\n')}\n`;
}

function optionLabel(name: string, o: OptionSpec): string {
  const long = name.length === 1 ? `-${name}` : `--${name}`;
  const value = o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : '';
  const repeat = o.multiple && o.type === 'string' ? '...' : '';
  return `${o.short ? `-${o.short}, ` : ''}${long}${value}${repeat}`;
}

function formatOption(label: string, text: string, width: number): string {
  const pad = label.length + 2 > width ? `\n${' '.repeat(width + 2)}` : ' '.repeat(width - label.length);
  return `  ${label}${pad}${text}`;
}

/** The long and short spellings an option answers to (for the test that walks every command). */
export function spellings(spec: CommandSpec): string[] {
  return Object.entries(spec.options).flatMap(([name, o]) => [
    name.length === 1 ? `-${name}` : `--${name}`,
    ...(o.short ? [`-${o.short}`] : []),
  ]);
}
