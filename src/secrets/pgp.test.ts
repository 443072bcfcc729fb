import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createMessage, encrypt, generateKey, readKey } from 'openpgp';
import { SecretsError } from './errors.js';
import { generateSecretSet } from './generate.js';
import { renderSecret } from './render.js';
import type { SecretSpec, StoredPgpKey, StoredSecret } from './types.js';

const home = mkdtempSync(join(tmpdir(), 'veil-gpg-'));
after(() => rmSync(home, { recursive: true, force: true }));
/** The real GnuPG, in a home directory of its own (never the user's keyring). */
function gpg(args: string[], input?: string | Buffer): string {
  const env = { ...process.env, GNUPGHOME: home };
  const stdio: ['pipe', 'pipe', 'pipe'] = ['pipe', 'pipe', 'pipe'];
  return execFileSync('gpg', ['--batch', '--yes', '--no-tty', '--pinentry-mode', 'loopback', ...args], {
    env,
    input,
    stdio,
    encoding: 'utf8',
  });
}
const file = (name: string, data: string | Buffer) => {
  const path = join(home, name);
  writeFileSync(path, data);
  return path;
};

const now = new Date();
const one = async (spec: SecretSpec, previous?: Map<string, StoredSecret>, previousSpec = spec) => {
  const prior = previous ? { specs: [previousSpec], values: previous } : undefined;
  return generateSecretSet([spec], prior, { now });
};
const lookupOf = (m: Map<string, StoredSecret>) => (n: string) => m.get(n);

describe('pgp-key secrets', () => {
  it('are generated (Curve25519, as GnuPG 2.2 reads it), render in every form, and GnuPG signs with them', async () => {
    const set = await one({ name: 'k', kind: 'pgp-key' });
    const render = (suffix: string) => renderSecret('k', suffix, lookupOf(set));
    const armored = render(':privatekey:asciiarmored') as string;
    assert.match(armored, /^-----BEGIN PGP PRIVATE KEY BLOCK-----/);
    assert.equal(render(''), armored, 'the bare placeholder is the armored private key');
    const binary = render(':privatekey:binary') as Buffer;
    assert.ok(Buffer.isBuffer(binary));
    assert.equal(render(':privatekey:base64'), binary.toString('base64'));
    const publicArmored = render(':publickey:asciiarmored') as string;
    assert.match(publicArmored, /^-----BEGIN PGP PUBLIC KEY BLOCK-----/);
    assert.equal(render(':publickey:base64'), (render(':publickey:binary') as Buffer).toString('base64'));
    assert.throws(
      () => render(':pem'),
      (e: SecretsError) => e.code === 'SECRET_RENDER' && /pgp-key/.test(e.message),
    );
    const publicKey = await readKey({ armoredKey: publicArmored });
    assert.equal(publicKey.getAlgorithmInfo().algorithm, 'eddsaLegacy');

    // The binary form is what gpg imports as it is; then it signs, and the public key alone verifies.
    gpg(['--import', file('private.gpg', binary)]);
    const fingerprint = publicKey.getFingerprint().toUpperCase();
    const signature = gpg(['--local-user', fingerprint, '--armor', '--detach-sign', '--output', '-', file('m', 'hi')]);
    const verifier = mkdtempSync(join(tmpdir(), 'veil-gpg-verify-'));
    after(() => rmSync(verifier, { recursive: true, force: true }));
    const env = { ...process.env, GNUPGHOME: verifier };
    execFileSync('gpg', ['--batch', '--import', file('public.asc', publicArmored)], { env, stdio: 'pipe' });
    const out = execFileSync(
      'gpg',
      ['--batch', '--status-fd', '1', '--verify', file('m.sig', signature), file('m', 'hi')],
      {
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    assert.match(out, new RegExp(`VALIDSIG ${fingerprint}`));
  });

  it('decrypt in GnuPG what was encrypted to the public key (armored private key imported)', async () => {
    const set = await one({ name: 'enc', kind: 'pgp-key' });
    const key = set.get('enc') as StoredPgpKey;
    gpg(['--import', file('enc.asc', key.value)]);
    const message = await encrypt({
      message: await createMessage({ text: 'for the enclave only' }),
      encryptionKeys: await readKey({ armoredKey: key.publicKey }),
    });
    assert.equal(gpg(['--decrypt'], message), 'for the enclave only');
  });

  it('take an explicit armored private key (a GnuPG export), and refuse a protected or malformed one', async () => {
    gpg(['--quick-gen-key', '--passphrase', '', 'explicit <e@x>', 'ed25519', 'sign', 'never']);
    const exported = gpg(['--armor', '--export-secret-keys', 'explicit']);
    const set = await one({ name: 'x', kind: 'pgp-key', value: exported });
    const key = set.get('x') as StoredPgpKey;
    const fingerprint = gpg(['--with-colons', '--fingerprint', 'explicit']).match(/^fpr:+([0-9A-F]{40}):/m)?.[1];
    assert.equal((await readKey({ armoredKey: key.publicKey })).getFingerprint().toUpperCase(), fingerprint);

    const locked = await generateKey({ type: 'curve25519', userIDs: [{ name: 'l' }], passphrase: 'secret-pass' });
    const refused = (why: RegExp) => (e: unknown) =>
      e instanceof SecretsError &&
      e.code === 'SECRET_INVALID_VALUE' &&
      why.test(e.message) &&
      !/secret-pass|BEGIN/.test(e.message);
    await assert.rejects(one({ name: 'l', kind: 'pgp-key', value: locked.privateKey }), refused(/passphrase/));
    await assert.rejects(one({ name: 'p', kind: 'pgp-key', value: locked.publicKey }), refused(/not an ASCII-armored/));
    await assert.rejects(one({ name: 'j', kind: 'pgp-key', value: 'junk' }), refused(/not an ASCII-armored/));
  });

  it('are kept on update while the kind stays, and made anew when it changes', async () => {
    const spec: SecretSpec = { name: 'k', kind: 'pgp-key' };
    const first = await one(spec);
    const again = await one(spec, first);
    assert.equal(again.get('k')!.value, first.get('k')!.value);
    const asAscii = await one({ name: 'k', kind: 'ascii' }, first, spec);
    assert.equal(asAscii.get('k')!.kind, 'ascii');
    const back = await one(spec, asAscii, { name: 'k', kind: 'ascii' });
    assert.notEqual(back.get('k')!.value, first.get('k')!.value);
  });
});
