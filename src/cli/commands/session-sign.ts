import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { uploadMessage } from '../../contract/index.js';
import { parseSession, substituteVariables } from '../../policy/index.js';
import { CliError, usage } from '../errors.js';
import { loadIdentity, veilHome } from '../home.js';
import type { Io } from '../io.js';
import { addSignature, signatureOver, signatureValid, signaturesFileOf, signerKeyHash } from '../session-signing.js';

/** `veil session sign …` (SCONE's `scone session sign`): its options, declared once for parsing and for help. */
export const SIGN_OPTIONS = {
  signer: { type: 'string' },
  signature: { type: 'string' },
  signatures: { type: 'string' },
  key: { type: 'string' },
  o: { type: 'string' },
  output: { type: 'string' },
  e: { type: 'string', multiple: true },
  'use-env': { type: 'boolean' },
} as const;

export const SIGN_USAGE =
  'veil session sign generate-message-to-be-signed FILE [-o OUT] | add-signature FILE --signer PUB.pem ' +
  '--signature SIG | sign-with-cli-identity FILE [--key KEY.pem]   [--signatures F] [-e VAR=VALUE]... [--use-env]';

type Values = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof SIGN_OPTIONS; allowPositionals: true }>
>['values'];

export async function sessionSign(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({ args: rest, options: SIGN_OPTIONS, allowPositionals: true });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw usage('veil session sign takes one session FILE', SIGN_USAGE);
  switch (sub) {
    case 'generate-message-to-be-signed':
      return generateMessage(file, values, io);
    case 'add-signature':
      return addGiven(file, values, io);
    case 'sign-with-cli-identity':
      return signWithKey(file, values, io);
    default:
      throw usage(`unknown command 'veil session sign ${sub ?? ''}'`, SIGN_USAGE);
  }
}

/** The session text exactly as `veil session create|update` will upload it, and its name. */
function upload(file: string, values: Values, io: Io): { text: string; name: string } {
  const vars: Record<string, string | undefined> = values['use-env'] ? { ...io.env } : {};
  for (const pair of values.e ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`-e '${pair}' is not VAR=VALUE`, 'e.g. -e SESSION=my-session');
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const text = substituteVariables(io.readFile(file), vars, { file });
  return { text, name: parseSession(text, { file }).name };
}

function generateMessage(file: string, values: Values, io: Io): number {
  const { text, name } = upload(file, values, io);
  const out = values.o ?? values.output;
  // The message is UTF-8 text with two zero bytes: written as it is, it is the exact bytes to sign.
  if (out === undefined) io.out(uploadMessage(name, text).toString('utf8'));
  else writeFileSync(out, uploadMessage(name, text));
  return 0;
}

function addGiven(file: string, values: Values, io: Io): number {
  if (!values.signer || !values.signature) throw usage('add-signature needs --signer and --signature', SIGN_USAGE);
  const { text, name } = upload(file, values, io);
  const signer = readText(values.signer, 'the signer public key');
  const signature = { signer, signature: readBinary(values.signature).toString('base64') };
  if (!signatureValid(text, name, signature)) {
    throw new CliError(
      'CLI_SIGNATURE',
      `${values.signature} is not a valid signature by ${values.signer} over ${file} (session '${name}')`,
      {
        hint:
          'sign the exact message: veil session sign generate-message-to-be-signed FILE -o msg, then ' +
          'openssl pkeyutl -sign -rawin -inkey KEY -in msg (Ed25519) or openssl dgst -sha256 -sign KEY msg',
      },
    );
  }
  return recorded(file, values, signature, io);
}

function signWithKey(file: string, values: Values, io: Io): number {
  const { text, name } = upload(file, values, io);
  const keyPem = values.key ? readText(values.key, 'the signing key') : loadIdentity(veilHome(io.env)).keyPem;
  return recorded(file, values, signatureOver(text, name, keyPem), io);
}

function recorded(file: string, values: Values, sig: { signer: string; signature: string }, io: Io): number {
  const path = values.signatures ?? signaturesFileOf(file);
  const count = addSignature(path, sig);
  io.out(`signature by signer ${signerKeyHash(sig.signer)} recorded in ${path} (${count} in all)\n`);
  return 0;
}

function readText(path: string, what: string): string {
  return readBinary(path, what).toString('utf8');
}

function readBinary(path: string, what = 'the signature'): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new CliError('CLI_FILE', `cannot read ${what} ${path}`, { hint: 'check the path', cause: err });
  }
}
