import { nodeTsmFs } from '../../attestation/configfs-tsm.js';
import {
  RuntimeError,
  Supervisor,
  chooseEvidenceSource,
  namespacesWork,
  openProgram,
  pinnedAttestation,
  realTimers,
  rewriteInjected,
  startProgram,
  type EvidenceMode,
  type LaunchOptions,
  type RuntimeConfig,
} from '../../runtime/index.js';
import { usage } from '../errors.js';
import { defineCommand } from '../spec.js';

/**
 * `veil run [flags] -- PROGRAM [ignored...]`: starts PROGRAM only after the CAS verified it, with the
 * policy's arguments, environment, working directory and injected files — never the host's.
 * `--mode hardware` (the default) sends TEE evidence from configfs-tsm and fails where there is none;
 * `--mode debug` (or VEIL_EVIDENCE=simulation) sends simulation evidence, for testing only.
 */
export const runCommand = defineCommand(
  {
    name: 'run',
    usage: ['[--mode hardware|debug] [--container] [--host NAME=ADDRESS]... -- PROGRAM'],
    summary:
      'starts PROGRAM after the CAS verified it (SCONE_CONFIG_ID, SCONE_CAS_ADDR, VEIL_CAS_FINGERPRINT), ' +
      "with the policy's arguments, environment and files",
    options: {
      mode: {
        type: 'string',
        value: 'MODE',
        description: 'hardware (default): TEE evidence from configfs-tsm; debug: simulation evidence, for testing',
      },
      container: { type: 'boolean', description: 'in a pod: no mounts; every written file must be on a memory fs' },
      host: { type: 'string', multiple: true, value: 'NAME=ADDR', description: "a name in the namespace's /etc/hosts" },
      'only_for_testing-trust-any': { type: 'boolean', description: 'ONLY FOR TESTING: trust any CAS' },
      'INSECURE-no-namespace': {
        type: 'boolean',
        description: 'INSECURE: no private namespace; injected secrets land on the host file system',
      },
    },
    positionals: true,
    notes: [
      'Arguments after PROGRAM are ignored: the policy gives the command line, never the host.',
      'SCONE_HEAP, SCONE_STACK and SCONE_ALLOW_DLOPEN (veil sconify --heap/--stack/--dlopen) are policy',
      'environment for the program: Veil runs it as an ordinary process with no enclave heap, stack or dlopen rule.',
    ],
  },
  async ({ values, positionals }, io) => {
    const program = positionals[0];
    if (!program)
      throw usage('veil run needs the program to start', 'e.g. SCONE_CONFIG_ID=session/service veil run -- python3');
    const configId = io.env['SCONE_CONFIG_ID'];
    if (!configId)
      throw usage(
        'SCONE_CONFIG_ID is not set',
        'set it to <session>/<service>; without it nothing is attested and nothing starts',
      );
    const casAddr = io.env['SCONE_CAS_ADDR'] || 'cas';
    const mode = parseMode(values.mode);
    const opened = openProgram(program, io.env['PATH'] ?? '');
    const inContainer = values.container === true;
    const namespaces = inContainer ? Promise.resolve(false) : namespacesWork(); // probed while attestation runs: launch time counts
    try {
      const program = {
        measurement: opened.measurement,
        runtimeCodeDigest: opened.runtimeCodeDigest,
        programSha256: opened.sha256,
      };
      const evidence = await chooseEvidenceSource({
        mode,
        env: io.env,
        fs: nodeTsmFs,
        program,
        log: (line) => io.err(`${line}\n`),
      });
      const attest = pinnedAttestation({
        casAddr,
        configId,
        evidence,
        now: () => new Date(),
        trust: {
          fingerprint: io.env['VEIL_CAS_FINGERPRINT'],
          caFile: io.env['VEIL_CAS_CA_FILE'],
          trustAny: values['only_for_testing-trust-any'],
        },
      });
      const config = await attest();
      io.err(acceptedLine(config.attestation));
      if (values['INSECURE-no-namespace'])
        io.err('[VEIL|WARNING] INSECURE: no private namespace; injected secrets are written to the host file system\n');
      if (inContainer) {
        if (config.renew_at !== undefined)
          io.err('[VEIL|WARNING] --container does not renew certificates: restart the pod before they expire\n');
        return await (await import('../../runtime/container.js')).launchInContainer(config, opened.fd);
      }
      const options: LaunchOptions = {
        insecureNoNamespace: values['INSECURE-no-namespace'] === true,
        namespaces,
        hosts: parseHosts(values.host ?? []),
      };
      return await supervise(config, opened.fd, options, attest, io);
    } catch (err) {
      if (err instanceof RuntimeError) {
        io.err(
          `[VEIL|FATAL] Could not start ${program}: ${err.message}\nNote: Connecting to CAS at ${casAddr} using service ID ${configId}\n`,
        );
      }
      throw err;
    } finally {
      opened.close();
    }
  },
);

/** The program under renewal (renewal.ts): signals go to whichever run of it is current. */
async function supervise(
  config: RuntimeConfig,
  fd: number,
  options: LaunchOptions,
  reattest: () => Promise<RuntimeConfig>,
  io: { err(text: string): void },
): Promise<number> {
  const supervisor = new Supervisor(config, {
    start: (next) => startProgram(next, fd, options),
    reattest,
    rewrite: (running, files) => rewriteInjected(files, running.secure ? running.pid : undefined),
    timers: realTimers,
    log: (line) => io.err(`${line}\n`),
  });
  const forward = (signal: NodeJS.Signals) => supervisor.signal(signal);
  for (const signal of SIGNALS) process.on(signal, forward);
  try {
    return await supervisor.run();
  } finally {
    for (const signal of SIGNALS) process.off(signal, forward);
  }
}

const SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

function parseMode(mode: string | undefined): EvidenceMode | undefined {
  if (mode === undefined || mode === 'debug' || mode === 'hardware') return mode;
  throw usage(
    `--mode ${mode} is not hardware or debug`,
    'hardware (the default) sends TEE evidence; debug sends simulation evidence, for testing only',
  );
}

/** `--host NAME=ADDRESS` (repeatable): names the program resolves through the namespace's /etc/hosts. */
function parseHosts(pairs: string[]): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  return Object.fromEntries(
    pairs.map((pair) => {
      const match = /^([A-Za-z0-9.-]+)=([0-9a-fA-F.:]+)$/.exec(pair);
      if (!match) throw usage(`--host '${pair}' is not NAME=ADDRESS`, 'e.g. --host api=127.0.0.2');
      return [match[1]!, match[2]!];
    }),
  );
}

/** Every attestation says what was accepted: simulation is never mistaken for hardware. */
function acceptedLine(
  a: { evidence: string; simulated: boolean; tcb_status?: string; tolerated?: string[] } | undefined,
): string {
  if (!a) return '[VEIL|WARNING] the CAS did not say what it accepted\n';
  if (a.simulated) return '[VEIL|WARNING] the CAS accepted SIMULATION evidence: nothing was verified by hardware\n';
  const tcb = a.tcb_status ? `, TCB ${a.tcb_status}` : '';
  const tolerated = a.tolerated?.length ? `, tolerating ${a.tolerated.join(', ')}` : '';
  return `[VEIL|INFO] the CAS verified ${a.evidence} evidence${tcb}${tolerated}\n`;
}
