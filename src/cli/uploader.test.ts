import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { readEnvelope } from '../encryption/index.js';
import { generateSessionKey, sessionRecipient } from '../encryption/index.js';
import type { CliError } from './errors.js';
import { loadIdentity } from './home.js';
import { main } from './main.js';
import { signatureValid, signaturesFileOf } from './session-signing.js';
import { capture } from './test-io.js';
import { creatorBinding, uploaderKeyHash } from './uploader.js';

/** `--uploader`: who will send an upload (and so own what it creates), as sign and encrypt bind it. */
const dir = mkdtempSync(join(tmpdir(), 'veil-uploader-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const [me, ci] = [join(dir, 'me'), join(dir, 'ci')];
const [mine, theirs] = [loadIdentity(me), loadIdentity(ci)];

describe('--uploader', () => {
  it('takes a certificate PEM or a key hash, and refuses anything else by name', () => {
    assert.equal(uploaderKeyHash(join(ci, 'identity.crt')), theirs.keyHash);
    assert.equal(uploaderKeyHash(theirs.keyHash.toUpperCase()), theirs.keyHash);
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    for (const bad of [junk, join(dir, 'missing.pem'), 'abc']) {
      assert.throws(
        () => uploaderKeyHash(bad),
        (e: CliError) => e.code === 'CLI_USAGE' && e.message.includes(bad),
      );
    }
  });

  it('is bound by a create only: an update (with predecessor) keeps the plain message', () => {
    assert.equal(
      creatorBinding(null, () => 'x'),
      'x',
    );
    assert.equal(
      creatorBinding('a'.repeat(64), () => 'x'),
      undefined,
    );
  });

  it("sign-with-cli-identity binds this CLI's identity to a create, or the --uploader given", async () => {
    const file = join(dir, 'new.yaml');
    writeFileSync(file, 'name: made\n');
    const text = readFileSync(file, 'utf8');
    assert.equal(await main(['session', 'sign', 'sign-with-cli-identity', file], capture({ VEIL_HOME: me })), 0);
    const [sig] = JSON.parse(readFileSync(signaturesFileOf(file), 'utf8')).signatures;
    assert.ok(signatureValid(text, 'made', sig, mine.keyHash), 'signed for this CLI as uploader');
    assert.ok(!signatureValid(text, 'made', sig, theirs.keyHash), 'not for another uploader');
    assert.ok(!signatureValid(text, 'made', sig), 'not with the update message');
    const forCi = ['--uploader', join(ci, 'identity.crt'), '--signatures', join(dir, 'ci.sig')];
    assert.equal(
      await main(['session', 'sign', 'sign-with-cli-identity', file, ...forCi], capture({ VEIL_HOME: me })),
      0,
    );
    const [ciSig] = JSON.parse(readFileSync(join(dir, 'ci.sig'), 'utf8')).signatures;
    assert.ok(signatureValid(text, 'made', ciSig, theirs.keyHash));
  });

  it('session encrypt names this CLI as the uploader, or the --uploader given', async () => {
    const r = await sessionRecipient(generateSessionKey(), 'c'.repeat(64));
    const file = join(dir, 's.yaml');
    writeFileSync(file, 'name: s\nversion: "0.3"\n');
    const offline = ['--key', r.publicKey.toString('hex'), '--cas-key', r.casFingerprint];
    const encrypt = async (...extra: string[]) => {
      const io = capture({ VEIL_HOME: me });
      assert.equal(await main(['session', 'encrypt', file, ...offline, ...extra], io), 0, io.stderr);
      return readEnvelope(io.stdout, 'stdout')!;
    };
    assert.equal((await encrypt()).uploader, mine.keyHash);
    assert.equal((await encrypt('--uploader', theirs.keyHash)).uploader, theirs.keyHash);
  });
});
