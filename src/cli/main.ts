import { readFileSync } from 'node:fs';
import { isVeilError } from '../errors.js';
import { CliError, usage } from './errors.js';
import type { Io } from './io.js';
import { COMMANDS, allCommands, isGroup, type Entry, type Group } from './registry.js';
import type { Command } from './spec.js';

const ENVIRONMENT = `Environment: VEIL_HOME (default ~/.veil), VEIL_MASTER_KEY (the CAS store's master key),
  VEIL_HOST_KEY (the host key signing simulation evidence, default $VEIL_HOME/host/host-key.pem),
  VEIL_EVIDENCE=simulation (veil run without a TEE, for testing), VEIL_TSM_PATH (configfs-tsm, default
  /sys/kernel/config/tsm), VEIL_TDX_MEASUREMENTS_PATH (default /sys/class/misc/tdx_guest/measurements),
  VEIL_CONTAINER_ENGINE (podman|docker|none: runs build.run and requirements, default podman then docker on PATH),
  VEIL_BUILD_NETWORK (default|none|host: the network of those steps).
`;

export function processIo(): Io {
  return {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    readFile: (path) => readFile(path),
    untilSignal,
  };
}

const TERMINATING: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * The handlers stay installed: a second signal (a supervisor that sends SIGTERM to the process group and then
 * to the process, as a shell's trap does) must not kill the command while it stops what it started.
 */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    for (const signal of TERMINATING) process.on(signal, () => resolve(signal));
  });
}

function readFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(
      'CLI_FILE',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      {
        hint: 'check the path passed with -f',
        cause: err,
      },
    );
  }
}

export async function main(args: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = args;
  try {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      io.out(await overview());
      return name ? 0 : 2;
    }
    const entry = COMMANDS[name];
    if (!entry) throw usage(`unknown command '${name}'`, "run 'veil --help'");
    return await runEntry(name, entry, rest, io);
  } catch (err) {
    return report(err, io);
  }
}

export async function runEntry(name: string, entry: Entry, args: string[], io: Io): Promise<number> {
  if (!isGroup(entry)) return (await entry()).run(args, io);
  const [sub, ...rest] = args;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(await groupHelp(name, entry));
    return 0;
  }
  const next = sub === undefined ? undefined : entry.subcommands[sub];
  if (next) return runEntry(`${name} ${sub}`, next, rest, io);
  if (entry.default) return (await entry.default()).run(args, io);
  const what = sub === undefined ? 'which command?' : `unknown command '${sub}'`;
  throw new CliError('CLI_USAGE', `veil ${name}: ${what} — run 'veil ${name} --help'`, {
    hint: `use ${Object.keys(entry.subcommands)
      .map((s) => `'veil ${name} ${s}'`)
      .join(', ')}`,
  });
}

async function groupHelp(name: string, group: Group): Promise<string> {
  const lines = [`veil ${name} — ${group.summary}`, '', 'Commands:'];
  for (const command of await allCommands([group])) lines.push(...usageLines(command));
  lines.push('', `'veil ${name} COMMAND --help' lists the options of each.`);
  return `${lines.join('\n')}\n`;
}

function usageLines(command: Command): string[] {
  const { spec } = command;
  return [...spec.usage.map((u) => `  veil ${spec.name} ${u}`.trimEnd()), `      ${spec.summary}`];
}

/** Generated from the specs, so the overview lists what the commands accept. */
async function overview(): Promise<string> {
  const lines = ['veil — confidential applications (a SCONE-compatible CAS, runtime and tooling)', '', 'Usage:'];
  for (const command of await allCommands(Object.values(COMMANDS))) lines.push(...usageLines(command));
  lines.push('', "'veil COMMAND --help' lists the options of each.", '');
  return `${lines.join('\n')}\n${ENVIRONMENT}`;
}

/** One line (more for policy issues): what failed, then what to do; the stable code in brackets. */
function report(err: unknown, io: Io): number {
  if (isVeilError(err)) {
    const message = err.message.startsWith('veil ') ? err.message : `veil: ${err.message}`;
    io.err(`${message}${err.hint ? `\n  → ${err.hint}` : ''} [${err.code}]\n`);
    return err.code === 'CLI_USAGE' ? 2 : 1;
  }
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.err(`veil: ${(err as Error).message}\n  → run 'veil --help' [CLI_USAGE]\n`);
    return 2;
  }
  throw err;
}
