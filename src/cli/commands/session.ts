import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import {
  parseSession,
  parseWrittenSession,
  REDACTED,
  resolveSession,
  sessionHash,
  importsFragments,
  platformSecretValues,
  type WrittenSession,
  substituteVariables,
} from '../../policy/index.js';
import { identityFromPem } from '../../cas/identity-of.js';
import { readEnvelope } from '../../encryption/index.js';
import { CasClient } from '../cas-client.js';
import { encryptUpload, publishedTarget } from '../session-encryption.js';
import { CliError, usage } from '../errors.js';
import { chosenIdentity, pinnedCas, veilHome, type LocalIdentity } from '../home.js';
import type { Io } from '../io.js';
import { signaturesFor } from '../session-signing.js';
import { creatorBinding } from '../uploader.js';
import { defineCommand, type OptionsSpec, type Parsed } from '../spec.js';
import { EXPIRING_WITHIN_DEFAULT as WITHIN, printExpiring, withinSeconds } from './session-expiring.js';

/** §5's common options of `scone session …`, each where it applies. */
export const FILE = {
  file: { type: 'string', short: 'f', value: 'FILE', description: 'the session file (or as the first argument)' },
  e: {
    type: 'string',
    multiple: true,
    value: 'VAR=VALUE',
    description: 'fills $VAR (and the braced form) in the file',
  },
  'use-env': { type: 'boolean', description: 'fills $VAR from the environment too (-e wins)' },
  name: { type: 'string', short: 'n', value: 'NAME', description: "the session's name, in place of the file's" },
  'fail-on-warning': {
    type: 'boolean',
    description: 'accepted: Veil reports every finding as an error, so there is no warning to pass',
  },
} as const satisfies OptionsSpec;

const CAS = {
  cas: { type: 'string', short: 'c', value: 'URL', description: 'the CAS (attested with veil cas attest)' },
  identity: {
    type: 'string',
    value: 'DIR',
    description: 'the client identity: a directory with identity.key and identity.crt (default $VEIL_HOME)',
  },
  'only_for_testing-disable-attestation-verification': {
    type: 'boolean',
    description: 'not supported by Veil: the CAS is always the one pinned by veil cas attest',
  },
} as const satisfies OptionsSpec;

const SIGNATURES = {
  signatures: {
    type: 'string',
    value: 'F',
    description: 'governance signatures to send (default FILE.signatures when it exists; veil session sign)',
  },
} as const satisfies OptionsSpec;

const ENCRYPT = {
  encrypt: {
    type: 'boolean',
    description: "encrypts the upload to the CAS's session-encryption key (PUT /v1/encrypted_sessions)",
  },
} as const satisfies OptionsSpec;

const OFFLINE = {
  cas: { type: 'string', short: 'c', value: 'URL', description: 'not supported by Veil here: this runs offline' },
} as const satisfies OptionsSpec;

const CREATOR = {
  creator: {
    type: 'string',
    value: 'CERT',
    description: "the PEM certificate of the session's creator (default: this CLI's identity)",
  },
} as const satisfies OptionsSpec;

type Values = Partial<
  Parsed<
    typeof FILE &
      typeof CAS &
      typeof CREATOR &
      typeof SIGNATURES &
      typeof ENCRYPT & { hash: { type: 'string'; description: '' } }
  >['values']
>;
export type Run = { values: Values; positionals: string[] };

export const create = defineCommand(
  {
    name: 'session create',
    usage: ['FILE [-e VAR=VALUE]... [--use-env] [-c URL]'],
    summary: 'uploads a new session; prints its hash (fails if the name exists: use update)',
    options: { ...FILE, ...CAS, ...SIGNATURES, ...ENCRYPT },
    notes: ['FILE may be an envelope from veil session encrypt: it is sent as it is'],
    positionals: true,
  },
  (parsed, io) => upload(parsed, io, false),
);

export const update = defineCommand(
  {
    name: 'session update',
    usage: ['FILE [-e VAR=VALUE]... [--use-env] [-c URL]'],
    summary: 'uploads a new version of a session, its predecessor filled in from the CAS; prints the new hash',
    options: { ...FILE, ...CAS, ...SIGNATURES, ...ENCRYPT },
    notes: ['an envelope from veil session encrypt is sent as it is: it must name its predecessor itself'],
    positionals: true,
  },
  (parsed, io) => upload(parsed, io, true),
);

export const read = defineCommand(
  {
    name: 'session read',
    usage: ['NAME [--hash H] [-c URL]', 'NAME --expiring [--within DURATION] [-c URL]'],
    summary: 'prints a session as the CAS holds it (secret values left out), or its certificates close to expiry',
    options: {
      name: { type: 'string', short: 'n', value: 'NAME', description: 'the session (or as the first argument)' },
      hash: { type: 'string', value: 'H', description: 'an earlier version, by its hash' },
      expiring: {
        type: 'boolean',
        description: 'lists the certificates that expire soon and what renews them (exit status 1 if any)',
      },
      within: { type: 'string', value: 'DURATION', description: `with --expiring: how soon (default ${WITHIN})` },
      ...CAS,
    },
    positionals: true,
  },
  async ({ values, positionals }, io) => {
    refuseUnsupported(values);
    const name = values.name ?? positionals[0];
    if (!name) throw usage('no session name given', 'veil session read <name> [--hash H]');
    if (values.expiring || values.within !== undefined) {
      const within = withinSeconds(values.expiring, values.within);
      const read = await withClient(values, io, (c) => c.readSession(name, values.hash, { certificates: true }));
      return printExpiring(io, name, read.certificates ?? [], within);
    }
    const result = await withClient(values, io, (client) => client.readSession(name, values.hash));
    io.out(result.session.endsWith('\n') ? result.session : `${result.session}\n`);
    return 0;
  },
);

/**
 * `scone session verify`: is the session in FILE the one the CAS holds? The hash of FILE (with the CAS's
 * predecessor, which `update` adds) against the CAS's current hash; exit 1 when they differ.
 */
export const verify = defineCommand(
  {
    name: 'session verify',
    usage: ['FILE [-e VAR=VALUE]... [--use-env] [-c URL] [--creator CERT]'],
    summary: "checks that the CAS's current version of the session is the one in FILE (same session hash)",
    options: { ...FILE, ...CAS, ...CREATOR },
    positionals: true,
  },
  async (parsed, io) => {
    const { text, file } = template(parsed, io);
    const session = parseSession(text, { file });
    const current = await withClient(parsed.values, io, (client) => client.readSession(session.name));
    const predecessor = (parseDocument(current.session).toJS() as { predecessor?: unknown } | null)?.predecessor;
    const withPred = session.predecessor === undefined && typeof predecessor === 'string';
    const local = checkedAsWritten(withPred ? withPredecessor(text, predecessor) : text, file);
    const hash = sessionHash(local, creatorOf(parsed.values, io));
    sameSession(session.name, file, hash, current.hash);
    io.out(`session '${session.name}' on the CAS is the one in ${file} (hash ${hash})\n`);
    return 0;
  },
);

/** The hashes name every field of the session (secrets included), so equal hashes mean the same session. */
export function sameSession(name: string, file: string, hash: string, casHash: string): void {
  if (hash !== casHash)
    throw new CliError(
      'CLI_SESSION_MISMATCH',
      `session '${name}' on the CAS (hash ${casHash}) is not the one in ${file} (hash ${hash})`,
      { hint: `see what the CAS holds with 'veil session read ${name}', or upload ${file} with update` },
    );
}

export const check = defineCommand(
  {
    name: 'session check',
    usage: ['FILE [-e VAR=VALUE]... [--use-env]'],
    summary: 'validates a session file offline, naming every problem with its line',
    options: { ...FILE, ...OFFLINE },
    positionals: true,
  },
  (parsed, io) => {
    const { text, file } = template(parsed, io, true);
    const session = parseSession(text, { file });
    io.out(`session '${session.name}' in ${file} is valid\n`);
    return 0;
  },
);

export const calculateHash = defineCommand(
  {
    name: 'session calculate-hash',
    usage: ['FILE [-e VAR=VALUE]... [--use-env] [--creator CERT]'],
    summary: 'the hash the CAS will give the session (offline), for predecessor fields and signatures',
    options: {
      ...FILE,
      ...OFFLINE,
      ...CREATOR,
      'for-fragment-exports': {
        type: 'boolean',
        description:
          'the hash of the text alone, which a config-fragment export pins (session_hash) for a session importing one',
      },
    },
    positionals: true,
  },
  (parsed, io) => {
    const { text, file } = template(parsed, io, true);
    const creator = creatorOf(parsed.values, io);
    if (!parsed.values['for-fragment-exports']) {
      io.out(`${sessionHash(checkedAsWritten(text, file), creator)}\n`);
      return 0;
    }
    // Fragment imports are judged by this hash: the values they bring cannot be in a hash before they are fetched.
    const written = parseWrittenSession(text, { file });
    resolveSession(written, { unknownImports: 'omit', file });
    io.out(`${sessionHash(written, creator)}\n`);
    return 0;
  },
);

/**
 * The CAS hashes the session as written, with its config-fragments' values, once it is checked whole. The
 * values of imported fragments are fetched by the CAS and are not in the file, so only the CAS knows the hash.
 */
function checkedAsWritten(text: string, file: string): WrittenSession {
  const written = parseWrittenSession(text, { file });
  resolveSession(written, { unknownImports: 'omit', file });
  refuseUnknownFragments(written, file);
  return written;
}

function refuseUnknownFragments(written: WrittenSession, file: string): void {
  if (importsFragments(written))
    throw new CliError(
      'CLI_HASH_NOT_LOCAL',
      `session '${written.name}' in ${file} imports config-fragments: its hash covers their values, ` +
        'which only the CAS fetches, so it cannot be calculated offline',
      {
        hint:
          `upload it, then 'veil session read ${written.name}' shows the hash the CAS gave it; the hash a ` +
          'config-fragment export pins is --for-fragment-exports',
      },
    );
  const platforms = new Set(platformSecretValues(written).map(([name]) => name));
  const redacted = (written.secrets ?? []).find(
    (s) => (s.kind === 'config-fragment' || platforms.has(s.name)) && s.value === REDACTED,
  );
  if (redacted)
    throw new CliError(
      'CLI_HASH_NOT_LOCAL',
      `${redacted.kind} '${redacted.name}' in ${file} is '${REDACTED}': the hash covers its value`,
      { hint: `write the fragment's value in the file, or see the hash with 'veil session read ${written.name}'` },
    );
}

function refuseUnsupported(values: Values & { cas?: string | undefined }, offline = false): void {
  if (values['only_for_testing-disable-attestation-verification'])
    throw usage(
      '--only_for_testing-disable-attestation-verification is not supported by Veil: ' +
        'the CLI talks only to a CAS it pinned',
      "pin a throw-away test CAS with 'veil cas attest URL --only_for_testing-trust-any' instead",
    );
  if (offline && values.cas !== undefined)
    throw usage('--cas is not supported by Veil here: this command runs offline and asks no CAS', 'drop --cas');
}

/**
 * The hash names the session's creator: `--creator <certificate PEM>` (whoever will create it), by default
 * this CLI's own identity (or --identity's), the one `veil session create` uploads with.
 */
function creatorOf(values: Values, io: Io): string {
  if (values.creator === undefined) return identityOf(values, io).keyHash;
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

function identityOf(values: Values, io: Io): LocalIdentity {
  return chosenIdentity(values.identity, io.env);
}

function fileOf({ values, positionals }: Run): string {
  if (positionals.length > 1) throw usage(`one session file, not ${positionals.length}`, 'veil session check FILE');
  const file = values.file ?? positionals[0];
  if (!file) throw usage('no session file given', 'name the session file: veil session create session.yaml');
  if (values.file !== undefined && positionals[0] !== undefined)
    throw usage('the session file is given twice (-f and as an argument)', 'give it once');
  return file;
}

/**
 * `$VAR` templates are filled from -e and (with --use-env) the environment; `$$SCONE::…$$` stays intact, and so
 * does a `$VAR` inside a YAML comment (it is no part of the session).
 */
export function template(run: Run, io: Io, offline = false): { text: string; file: string } {
  const { values } = run;
  refuseUnsupported(values, offline);
  const file = fileOf(run);
  const vars: Record<string, string | undefined> = values['use-env'] ? { ...io.env } : {};
  for (const pair of values.e ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`-e '${pair}' is not VAR=VALUE`, 'e.g. -e SESSION=my-session');
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  let text = substituteVariables(io.readFile(file), vars, { file });
  if (values.name !== undefined) {
    const doc = parseDocument(text);
    doc.set('name', values.name);
    text = doc.toString();
  }
  return { text, file };
}

async function withClient<T>(values: Values, io: Io, f: (client: CasClient) => Promise<T>): Promise<T> {
  const client = new CasClient(pinnedCas(veilHome(io.env), values.cas), identityOf(values, io));
  try {
    return await f(client);
  } finally {
    await client.close();
  }
}

async function upload(run: Run, io: Io, isUpdate: boolean): Promise<number> {
  let { text, file } = template(run, io);
  // An envelope (veil session encrypt) goes as it is: the CLI cannot read it, so it cannot fill in predecessor.
  if (readEnvelope(text, file)) return uploadEnvelope(run, io, text, file, isUpdate);
  const session = parseSession(text, { file });
  // Signed text is uploaded as it was signed: it must name its predecessor itself (the signature covers it).
  // A signed create binds the uploader, which becomes CREATOR: this client's identity.
  const creator = creatorBinding(session.predecessor, () => identityOf(run.values, io).keyHash);
  const signatures = signaturesFor({ text, name: session.name, creator }, file, run.values.signatures);
  const result = await withClient(run.values, io, async (client) => {
    if (isUpdate && signatures.length === 0)
      text = withPredecessor(text, (await client.readSession(session.name)).hash);
    if (run.values.encrypt) {
      if (signatures.length > 0)
        throw new CliError('CLI_UNSUPPORTED', '--encrypt with governance signatures is not supported by Veil yet', {
          hint: 'upload signed sessions without --encrypt (TLS protects them on the way to the CAS)',
        });
      return client.putEncryptedSession(await encryptUpload(await publishedTarget(client), text));
    }
    return client.postSession(text, signatures);
  });
  if (isUpdate && result.status === 201)
    throw new CliError('CLI_CAS_ERROR', `session '${session.name}' was created, not updated`);
  io.out(`${result.hash}\n`);
  return 0;
}

async function uploadEnvelope(run: Run, io: Io, envelope: string, file: string, isUpdate: boolean) {
  const result = await withClient(run.values, io, (client) => client.putEncryptedSession(envelope));
  if (isUpdate && result.status === 201)
    throw new CliError('CLI_CAS_ERROR', `the encrypted session in ${file} was created, not updated`);
  if (!isUpdate && result.status === 200)
    io.err(`[VEIL|NOTE] the encrypted session in ${file} names a predecessor: it updated a session\n`);
  io.out(`${result.hash}\n`);
  return 0;
}

/** `update` fills in `predecessor`, as `scone session update` does. */
function withPredecessor(text: string, hash: string): string {
  const doc = parseDocument(text);
  doc.set('predecessor', hash);
  return doc.toString();
}
