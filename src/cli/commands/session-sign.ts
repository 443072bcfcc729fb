import { readFileSync, writeFileSync } from 'node:fs';
import { uploadMessage } from '../../contract/index.js';
import { parseSession } from '../../policy/index.js';
import { CliError, usage } from '../errors.js';
import { loadIdentity, veilHome } from '../home.js';
import type { Io } from '../io.js';
import { defineCommand, type OptionsSpec } from '../spec.js';
import { FILE, type Run, template } from './session.js';
import { creatorBinding, uploaderKeyHash } from '../uploader.js';
import { addSignature, signatureOver, signatureValid, signaturesFileOf, signerKeyHash } from '../session-signing.js';

const UPLOADER = {
  uploader: {
    type: 'string',
    value: 'CERT.pem|KEYHASH',
    description: "for a create (no predecessor): the TLS identity that will upload it (default: this CLI's)",
  },
} as const satisfies OptionsSpec;

const SIGNATURES = {
  signatures: {
    type: 'string',
    value: 'F',
    description: 'the signatures file (default FILE.signatures, which create and update send)',
  },
} as const satisfies OptionsSpec;

/** `veil session sign …` (SCONE's `scone session sign`): the message, offline signatures, the CLI's own. */
export const generate = defineCommand(
  {
    name: 'session sign generate-message-to-be-signed',
    usage: ['FILE [--uploader CERT.pem|KEYHASH] [-o OUT] [-e VAR=VALUE]... [--use-env]'],
    summary: 'writes the exact bytes a signer signs (the session name and text as they will be uploaded)',
    options: {
      ...FILE,
      ...UPLOADER,
      output: { type: 'string', short: 'o', value: 'OUT', description: 'write the message here (default stdout)' },
    },
    positionals: true,
    notes: [
      'sign it offline: openssl pkeyutl -sign -rawin -inkey KEY -in msg (Ed25519), openssl dgst -sha256 -sign KEY msg',
    ],
  },
  (run, io) => generateMessage(run, io),
);

export const add = defineCommand(
  {
    name: 'session sign add-signature',
    usage: ['FILE --signer PUB.pem --signature SIG [--uploader CERT.pem|KEYHASH] [--signatures F]'],
    summary: "checks a signer's signature over FILE and records it in the signatures file",
    options: {
      ...FILE,
      ...SIGNATURES,
      ...UPLOADER,
      signer: { type: 'string', value: 'PUB.pem', description: "the signer's public key (SPKI PEM)" },
      signature: { type: 'string', value: 'SIG', description: 'the signature (raw bytes, as openssl writes it)' },
    },
    positionals: true,
  },
  (run, io) => addGiven(run, io),
);

export const withIdentity = defineCommand(
  {
    name: 'session sign sign-with-cli-identity',
    usage: ['FILE [--key KEY.pem] [--uploader CERT.pem|KEYHASH] [--signatures F]'],
    summary: "signs FILE with this CLI's identity key (or --key) and records the signature",
    options: {
      ...FILE,
      ...SIGNATURES,
      ...UPLOADER,
      key: { type: 'string', value: 'KEY.pem', description: "a signer's private key in place of the CLI identity's" },
    },
    positionals: true,
  },
  (run, io) => signWithKey(run, io),
);

type SignRun = Run & {
  values: { output?: string; signer?: string; signature?: string; key?: string; uploader?: string };
};

/**
 * The session text exactly as `veil session create|update` will upload it, its name, and for a create (no
 * predecessor) the uploader the signatures bind: --uploader, or this CLI's identity.
 */
function upload(run: SignRun, io: Io): { text: string; name: string; file: string; creator: string | undefined } {
  const { text, file } = template(run, io, true);
  const session = parseSession(text, { file });
  const given = run.values.uploader;
  const uploader = () => (given ? uploaderKeyHash(given) : loadIdentity(veilHome(io.env)).keyHash);
  return { text, name: session.name, file, creator: creatorBinding(session.predecessor, uploader) };
}

function generateMessage(run: SignRun, io: Io): number {
  const { text, name, creator } = upload(run, io);
  const out = run.values.output;
  // The message is UTF-8 text with zero bytes: written as it is, it is the exact bytes to sign.
  if (out === undefined) io.out(uploadMessage(name, text, creator).toString('utf8'));
  else writeFileSync(out, uploadMessage(name, text, creator));
  return 0;
}

function addGiven(run: SignRun, io: Io): number {
  const { values } = run;
  if (!values.signer || !values.signature)
    throw usage('add-signature needs --signer and --signature', 'veil session sign add-signature --help');
  const { text, name, file, creator } = upload(run, io);
  const signer = readText(values.signer, 'the signer public key');
  const signature = { signer, signature: readBinary(values.signature).toString('base64') };
  if (!signatureValid(text, name, signature, creator)) {
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
  return recorded(file, run, signature, io);
}

function signWithKey(run: SignRun, io: Io): number {
  const { values } = run;
  const { text, name, file, creator } = upload(run, io);
  const keyPem = values.key ? readText(values.key, 'the signing key') : loadIdentity(veilHome(io.env)).keyPem;
  return recorded(file, run, signatureOver(text, name, keyPem, creator), io);
}

function recorded(file: string, run: Run, sig: { signer: string; signature: string }, io: Io): number {
  const path = run.values.signatures ?? signaturesFileOf(file);
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
