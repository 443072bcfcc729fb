import { writeFileSync } from 'node:fs';
import { parsePublicKey, readEnvelope, recipientHash } from '../../encryption/index.js';
import { parseSession } from '../../policy/index.js';
import { CasClient } from '../cas-client.js';
import { usage } from '../errors.js';
import { loadIdentity, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';
import { defineCommand } from '../spec.js';
import { FILE, template } from './session.js';
import { uploaderKeyHash } from '../uploader.js';
import { encryptUpload, publishedTarget, type EncryptionTarget } from '../session-encryption.js';

const SESSION_ENCRYPT_USAGE = 'veil session encrypt --help';

/**
 * `veil session encrypt FILE` (SCONE: `scone session encrypt [--cas|--key]`): the session, checked, encrypted to a
 * CAS — the pinned one (`--cas URL`, or the default), asked for its key; or offline, `--key` (as `veil cas
 * show-identification --session-encryption-key` prints it) with `--cas-key` (its CA fingerprint, which the
 * envelope binds). `veil session create|update` send the result as it is (PUT /v1/encrypted_sessions).
 */
export const sessionEncrypt = defineCommand(
  {
    name: 'session encrypt',
    usage: [
      'FILE [-c URL | --key KEY --cas-key FINGERPRINT] [--uploader CERT.pem|KEYHASH] [-o OUT] [-e VAR=VALUE]... ' +
        '[--use-env]',
    ],
    summary: "encrypts a session to a CAS's session-encryption key (upload the result with create or update)",
    options: {
      ...FILE,
      cas: { type: 'string', short: 'c', value: 'URL', description: 'the CAS to ask for its key (pinned)' },
      key: {
        type: 'string',
        value: 'KEY',
        description: 'offline: the key veil cas show-identification --session-encryption-key prints',
      },
      'cas-key': { type: 'string', value: 'FINGERPRINT', description: "with --key: the CAS's CA fingerprint" },
      uploader: {
        type: 'string',
        value: 'CERT.pem|KEYHASH',
        description: "the TLS identity that will upload it and become CREATOR (default: this CLI's identity)",
      },
      output: { type: 'string', short: 'o', value: 'OUT', description: 'write the envelope here (default stdout)' },
    },
    positionals: true,
  },
  async (run, io) => {
    const { text, file } = template(run, io);
    if (readEnvelope(text, file)) throw usage(`${file} is encrypted already`, 'encrypt the session file (YAML)');
    const session = parseSession(text, { file });
    const target = await targetOf(run.values, io);
    const envelope = await encryptUpload(target, text);
    const out = run.values.output;
    const what =
      `session '${session.name}' encrypted for the CAS with CA fingerprint ${target.fingerprint}, ` +
      `to be uploaded by key hash ${target.uploader}`;
    if (out === undefined) {
      io.out(envelope);
      io.err(`${what} (key hash ${recipientHash(target.publicKey)})\n`);
    } else {
      writeFileSync(out, envelope);
      io.out(`${what}: ${out} (upload it with veil session create ${out})\n`);
    }
    return 0;
  },
);

type Values = {
  cas?: string | undefined;
  key?: string | undefined;
  'cas-key'?: string | undefined;
  uploader?: string | undefined;
};

async function targetOf(values: Values, io: Io): Promise<EncryptionTarget> {
  const cas = values.cas;
  if (values.key !== undefined) {
    if (cas !== undefined) throw usage('--cas and --key exclude each other', SESSION_ENCRYPT_USAGE);
    const fingerprint = values['cas-key']?.trim().toLowerCase();
    if (!fingerprint || !/^[0-9a-f]{64}$/.test(fingerprint)) {
      throw usage(
        '--key needs --cas-key FINGERPRINT (64 hex digits): the envelope binds the CAS it is for',
        "the CAS's CA fingerprint: 'veil cas show-identification -c', or what 'veil cas serve' prints",
      );
    }
    const uploader = values.uploader ? uploaderKeyHash(values.uploader) : loadIdentity(veilHome(io.env)).keyHash;
    return { publicKey: parsePublicKey(values.key, '--key'), fingerprint, uploader };
  }
  if (values['cas-key'] !== undefined) throw usage('--cas-key goes with --key', SESSION_ENCRYPT_USAGE);
  const home = veilHome(io.env);
  const client = new CasClient(pinnedCas(home, cas), loadIdentity(home));
  try {
    return await publishedTarget(client, values.uploader ? uploaderKeyHash(values.uploader) : client.uploader);
  } finally {
    await client.close();
  }
}
