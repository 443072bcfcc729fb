import { readFileSync } from 'node:fs';
import { isVeilError } from '../errors.js';
import { CliError } from './errors.js';
import type { Io } from './io.js';

const HELP = `veil — confidential applications (a SCONE-compatible CAS, runtime and tooling)

Usage:
  veil apply -f service.yaml [-t DIR] [-p] [--no-push | --no-image]      (bundle + OCI image)
  veil apply -f mesh.yaml [-t DIR] [-p] [--dry-run] [--mode production|debug] [--cas URL] [--release R] [-o yaml]
                        [--platform HOST-ID]...   (debug: hosts accepted besides this one)
  veil up [-f mesh.yaml] [-t DIR] [--cas URL]   (the whole mesh on this machine)
  veil sconify --from IMAGE --to IMAGE --binary PATH --dir DIR... [--cas URL] [--namespace NS] [--create-namespace]
  veil cas serve [--listen HOST:PORT] [--data DIR] [--master-key-file F] [--name DNS]...
  veil cas attest URL (-c FINGERPRINT | measurement options | --only_for_testing-trust-any) [-C] [-G] [-S]
                  [--ignore-advisories IDS] [--collateral F|DIR]... [--pcs-url URL] [--kds-url URL]
  veil attestation verify --type sgx|tdx|snp|az-snp-vtpm|az-tdx-vtpm EVIDENCE [--collateral F|DIR]...
                          [--certs F]... [--at ISO-TIME] [--json] [--pcs-url URL] [--kds-url URL]
  veil cas image --to IMAGE [--push]   |   veil cas chart --image IMAGE [-o DIR] [--yaml DIR]
  veil self show | show-key-hash | show-certificate
  veil host id | show                  (this host's platform ID: sessions list it in platforms for simulation)
  SCONE_CONFIG_ID=S/SVC SCONE_CAS_ADDR=H[:P] VEIL_CAS_FINGERPRINT=F veil run [--mode hardware|debug] -- PROGRAM
                                       (hardware: TEE evidence from configfs-tsm; debug: simulation, for testing)
  veil measure [--rtmr] PROGRAM        (the simulation measurement a policy lists in mrenclaves; --rtmr: TDX RTMR3)
  veil fspf encrypt SRCDIR OUTDIR      (prints the fspf_tag and fspf_key for the policy)
  veil session create|update -f FILE [--cas URL] [-e VAR=VALUE]... [--use-env]
  veil session read NAME [--hash H] [--cas URL]
  veil session check|calculate-hash -f FILE [-e VAR=VALUE]... [--use-env]

Environment: VEIL_HOME (default ~/.veil), VEIL_MASTER_KEY (the CAS store's master key),
  VEIL_HOST_KEY (the host key signing simulation evidence, default $VEIL_HOME/host/host-key.pem),
  VEIL_EVIDENCE=simulation (veil run without a TEE, for testing), VEIL_TSM_PATH (configfs-tsm, default
  /sys/kernel/config/tsm), VEIL_TDX_MEASUREMENTS_PATH (default /sys/class/misc/tdx_guest/measurements).
`;

type Command = (args: string[], io: Io) => Promise<number>;
/** Commands load on demand: `veil run` sits on the launch path and must not pay for the CAS server's modules. */
const COMMANDS: Record<string, () => Promise<Command>> = {
  apply: async () => (await import('./commands/apply.js')).applyCommand,
  attestation: async () => (await import('./commands/attestation.js')).attestationCommand,
  cas: async () => (await import('./commands/cas.js')).casCommand,
  fspf: async () => (await import('./commands/fspf.js')).fspfCommand,
  host: async () => (await import('./commands/host.js')).hostCommand,
  measure: async () => (await import('./commands/measure.js')).measureCommand,
  run: async () => (await import('./commands/run.js')).runCommand,
  sconify: async () => (await import('./commands/sconify.js')).sconifyCommand,
  self: async () => (await import('./commands/self.js')).selfCommand,
  session: async () => (await import('./commands/session.js')).sessionCommand,
  up: async () => (await import('./commands/up.js')).upCommand,
};

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
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    io.out(HELP);
    return name ? 0 : 2;
  }
  const command = COMMANDS[name];
  try {
    if (!command) throw new CliError('CLI_USAGE', `unknown command '${name}'`, { hint: "run 'veil --help'" });
    return await (await command())(rest, io);
  } catch (err) {
    return report(err, io);
  }
}

/** One line (more for policy issues): what failed, then what to do; the stable code in brackets. */
function report(err: unknown, io: Io): number {
  if (isVeilError(err)) {
    io.err(`veil: ${err.message}${err.hint ? `\n  → ${err.hint}` : ''} [${err.code}]\n`);
    return err.code === 'CLI_USAGE' ? 2 : 1;
  }
  if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
    io.err(`veil: ${(err as Error).message}\n  → run 'veil --help' [CLI_USAGE]\n`);
    return 2;
  }
  throw err;
}
