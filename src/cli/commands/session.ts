import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import {
  parseSession,
  parseWrittenSession,
  resolveSession,
  sessionHash,
  substituteVariables,
} from '../../policy/index.js';
import { identityFromPem } from '../../cas/identity-of.js';
import { CasClient } from '../cas-client.js';
import { CliError, usage } from '../errors.js';
import { loadIdentity, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';

const OPTIONS = {
  f: { type: 'string' },
  file: { type: 'string' },
  cas: { type: 'string' },
  c: { type: 'string' },
  e: { type: 'string', multiple: true },
  'use-env': { type: 'boolean' },
  n: { type: 'string' },
  name: { type: 'string' },
  hash: { type: 'string' },
  creator: { type: 'string' },
} as const;

type Values = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>
>['values'];

export async function sessionCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  switch (sub) {
    case 'check':
      return check(values, io);
    case 'calculate-hash':
      io.out(`${sessionHash(checkedAsWritten(values, io), creatorOf(values, io))}\n`);
      return 0;
    case 'create':
      return upload(values, io, false);
    case 'update':
      return upload(values, io, true);
    case 'read':
      return read(values, positionals, io);
    default:
      throw usage(`unknown command 'veil session ${sub ?? ''}'`, 'use create, update, read, check or calculate-hash');
  }
}

/**
 * The hash names the session's creator: `--creator <certificate PEM>` (whoever will create it), by default
 * this CLI's own identity, the one `veil session create` uploads with.
 */
function creatorOf(values: Values, io: Io): string {
  if (values.creator === undefined) return loadIdentity(veilHome(io.env)).keyHash;
  let pem: string;
  try {
    pem = readFileSync(values.creator, 'utf8');
  } catch (err) {
    throw new CliError('CLI_USAGE', `cannot read the creator's certificate ${values.creator}`, {
      hint: '--creator takes the PEM certificate of the identity that creates the session',
      cause: err,
    });
  }
  try {
    return identityFromPem(pem).keyHash;
  } catch (err) {
    throw new CliError('CLI_USAGE', `${values.creator} is not a PEM certificate`, {
      hint: '--creator takes the PEM certificate of the identity that creates the session',
      cause: err,
    });
  }
}

function fileOf(values: Values): string {
  const file = values.f ?? values.file;
  if (!file) throw usage('no session file given', 'pass the policy with -f FILE');
  return file;
}

/** `$VAR` templates are filled from -e and (with --use-env) the environment; `$$SCONE::…$$` stays intact. */
function template(values: Values, io: Io): string {
  const file = fileOf(values);
  const vars: Record<string, string | undefined> = values['use-env'] ? { ...io.env } : {};
  for (const pair of values.e ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`-e '${pair}' is not VAR=VALUE`, 'e.g. -e SESSION=my-session');
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return substituteVariables(io.readFile(file), vars, { file });
}

/** The CAS hashes the session as written (config-fragments as placeholders), once it is checked whole. */
function checkedAsWritten(values: Values, io: Io) {
  const written = parseWrittenSession(template(values, io), { file: fileOf(values) });
  resolveSession(written, { unknownImports: 'omit', file: fileOf(values) });
  return written;
}

function check(values: Values, io: Io): number {
  const session = parseSession(template(values, io), { file: fileOf(values) });
  io.out(`session '${session.name}' in ${fileOf(values)} is valid\n`);
  return 0;
}

async function withClient<T>(values: Values, io: Io, f: (client: CasClient) => Promise<T>): Promise<T> {
  const home = veilHome(io.env);
  const client = new CasClient(pinnedCas(home, values.cas ?? values.c), loadIdentity(home));
  try {
    return await f(client);
  } finally {
    await client.close();
  }
}

async function upload(values: Values, io: Io, update: boolean): Promise<number> {
  let text = template(values, io);
  const session = parseSession(text, { file: fileOf(values) });
  const result = await withClient(values, io, async (client) => {
    if (update) text = withPredecessor(text, (await client.readSession(session.name)).hash);
    return client.postSession(text);
  });
  if (update && result.status === 201)
    throw new CliError('CLI_CAS_ERROR', `session '${session.name}' was created, not updated`);
  io.out(`${result.hash}\n`);
  return 0;
}

/** `update` fills in `predecessor`, as `scone session update` does. */
function withPredecessor(text: string, hash: string): string {
  const doc = parseDocument(text);
  doc.set('predecessor', hash);
  return doc.toString();
}

async function read(values: Values, positionals: string[], io: Io): Promise<number> {
  const name = values.n ?? values.name ?? positionals[0];
  if (!name) throw usage('no session name given', 'veil session read <name> [--hash H]');
  const result = await withClient(values, io, (client) => client.readSession(name, values.hash));
  io.out(result.session.endsWith('\n') ? result.session : `${result.session}\n`);
  return 0;
}
