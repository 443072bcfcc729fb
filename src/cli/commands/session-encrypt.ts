import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parsePublicKey, readEnvelope, recipientHash } from '../../encryption/index.js';
import { parseSession, substituteVariables } from '../../policy/index.js';
import { CasClient } from '../cas-client.js';
import { usage } from '../errors.js';
import { loadIdentity, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';
import { encryptUpload, publishedTarget, type EncryptionTarget } from '../session-encryption.js';

export const SESSION_ENCRYPT_USAGE =
  'veil session encrypt FILE [--cas URL | --key KEY --cas-key FINGERPRINT] [-o OUT] [-e VAR=VALUE]... [--use-env]';

export const SESSION_ENCRYPT_OPTIONS = {
  f: { type: 'string' },
  file: { type: 'string' },
  cas: { type: 'string' },
  c: { type: 'string' },
  key: { type: 'string' },
  'cas-key': { type: 'string' },
  o: { type: 'string' },
  output: { type: 'string' },
  e: { type: 'string', multiple: true },
  'use-env': { type: 'boolean' },
} as const;

/**
 * `veil session encrypt FILE` (SCONE: `scone session encrypt [--cas|--key]`): the session, checked, encrypted to a
 * CAS — the pinned one (`--cas URL`, or the default), asked for its key; or offline, `--key` (as `veil cas
 * show-identification --session-encryption-key` prints it) with `--cas-key` (its CA fingerprint, which the
 * envelope binds). `veil session create|update` send the result as it is (PUT /v1/encrypted_sessions).
 */
export async function sessionEncrypt(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: SESSION_ENCRYPT_OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  const file = values.f ?? values.file ?? positionals[0];
  if (!file) throw usage('no session file given', SESSION_ENCRYPT_USAGE);
  const text = filled(io.readFile(file), values, io, file);
  if (readEnvelope(text, file)) throw usage(`${file} is encrypted already`, 'encrypt the session file (YAML)');
  const session = parseSession(text, { file });
  const target = await targetOf(values, io);
  const envelope = await encryptUpload(target, text);
  const out = values.o ?? values.output;
  const what = `session '${session.name}' encrypted for the CAS with CA fingerprint ${target.fingerprint}`;
  if (out === undefined) {
    io.out(envelope);
    io.err(`${what} (key hash ${recipientHash(target.publicKey)})\n`);
  } else {
    writeFileSync(out, envelope);
    io.out(`${what}: ${out} (upload it with veil session create ${out})\n`);
  }
  return 0;
}

type Values = ReturnType<
  typeof parseArgs<{ args: string[]; options: typeof SESSION_ENCRYPT_OPTIONS; allowPositionals: true }>
>['values'];

async function targetOf(values: Values, io: Io): Promise<EncryptionTarget> {
  const cas = values.cas ?? values.c;
  if (values.key !== undefined) {
    if (cas !== undefined) throw usage('--cas and --key exclude each other', SESSION_ENCRYPT_USAGE);
    const fingerprint = values['cas-key']?.trim().toLowerCase();
    if (!fingerprint || !/^[0-9a-f]{64}$/.test(fingerprint)) {
      throw usage(
        '--key needs --cas-key FINGERPRINT (64 hex digits): the envelope binds the CAS it is for',
        "the CAS's CA fingerprint: 'veil cas show-identification -c', or what 'veil cas serve' prints",
      );
    }
    return { publicKey: parsePublicKey(values.key, '--key'), fingerprint };
  }
  if (values['cas-key'] !== undefined) throw usage('--cas-key goes with --key', SESSION_ENCRYPT_USAGE);
  const home = veilHome(io.env);
  const client = new CasClient(pinnedCas(home, cas), loadIdentity(home));
  try {
    return await publishedTarget(client);
  } finally {
    await client.close();
  }
}

function filled(text: string, values: Values, io: Io, file: string): string {
  const vars: Record<string, string | undefined> = values['use-env'] ? { ...io.env } : {};
  for (const pair of values.e ?? []) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw usage(`-e '${pair}' is not VAR=VALUE`, 'e.g. -e SESSION=my-session');
    vars[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return substituteVariables(text, vars, { file });
}
