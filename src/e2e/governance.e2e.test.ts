import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { opensslIdentity, run, startCas, tempDir, veil, type CasProcess } from './harness.js';

/**
 * The threshold test of issue #11 with real processes: a CAS, the CLI, and three signers whose keys and
 * signatures are made with openssl (Ed25519 with pkeyutl -rawin, ECDSA P-256 and RSA with dgst -sha256).
 */
describe('governance: require-at-least-2 of three openssl signers', () => {
  const dir = tempDir('veil-gov-e2e-');
  const env = { VEIL_HOME: join(dir.path, 'home') };
  const at = (name: string) => join(dir.path, name);
  let cas: CasProcess;
  const signers = [
    { key: at('s1.pem'), pub: at('s1.pub'), gen: ['-algorithm', 'ed25519'] },
    { key: at('s2.pem'), pub: at('s2.pub'), gen: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'] },
    { key: at('s3.pem'), pub: at('s3.pub'), gen: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] },
  ];
  const hashes: string[] = [];
  let v1 = '';
  let head = '';

  const openssl = async (args: string[]) => {
    const r = await run('openssl', args);
    assert.equal(r.code, 0, `openssl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const block = (path: string) =>
    readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => `            ${l}`)
      .join('\n');
  const session = (predecessor?: string, comment = '') =>
    [
      'name: gov-app',
      'version: "0.3.11"',
      ...(predecessor ? [`predecessor: ${predecessor}`] : []),
      'access_policy:',
      '  read: [CREATOR]',
      '  update:',
      '    - require-at-least-2:',
      ...signers.map((s) => `        - signer: |\n${block(s.pub)}`),
      `services: [] ${comment}`,
      '',
    ].join('\n');

  /** Signer i signs the message of FILE as an offline signer would, and hands back the signature file. */
  async function offlineSign(i: number, file: string): Promise<string> {
    const msg = `${file}.msg`;
    const sig = `${file}.s${i + 1}.sig`;
    const r = await veil(['session', 'sign', 'generate-message-to-be-signed', file, '-o', msg], env);
    assert.equal(r.code, 0, r.stderr);
    const s = signers[i]!;
    if (i === 0) await openssl(['pkeyutl', '-sign', '-rawin', '-inkey', s.key, '-in', msg, '-out', sig]);
    else await openssl(['dgst', '-sha256', '-sign', s.key, '-out', sig, msg]);
    return sig;
  }
  async function addSignature(i: number, file: string) {
    const sig = await offlineSign(i, file);
    const r = await veil(
      ['session', 'sign', 'add-signature', file, '--signer', signers[i]!.pub, '--signature', sig],
      env,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`signature by signer ${hashes[i]} recorded in ${file}.signatures`));
  }
  const update = (file: string) => veil(['session', 'update', '-f', file], env);

  before(async () => {
    for (const s of signers) {
      await openssl(['genpkey', ...s.gen, '-out', s.key]);
      await openssl(['pkey', '-in', s.key, '-pubout', '-out', s.pub]);
      const der = at('spki.der');
      await openssl(['pkey', '-pubin', '-in', s.pub, '-outform', 'DER', '-out', der]);
      hashes.push((await openssl(['dgst', '-sha256', '-r', der])).split(' ')[0]!);
    }
    cas = await startCas(join(dir.path, 'data'), dir.path);
    const attest = await veil(['cas', 'attest', cas.url, '-c', cas.fingerprint], env);
    assert.equal(attest.code, 0, attest.stderr);
    writeFileSync(at('v1.yaml'), session());
    const created = await veil(['session', 'create', '-f', at('v1.yaml')], env);
    assert.equal(created.code, 0, created.stderr);
    v1 = created.stdout.trim();
  });
  after(async () => {
    await cas?.stop();
    dir.cleanup();
  });

  it('refuses one signature, saying how many are missing and from which signers', async () => {
    const file = at('v2.yaml');
    writeFileSync(file, session(v1, '# v2'));
    const unsigned = await update(file);
    assert.equal(unsigned.code, 1);
    assert.match(unsigned.stderr, /CAS_SIGNATURES_MISSING/);
    assert.match(unsigned.stderr, /2 more signatures needed \(0 of 2 present\)/);
    await addSignature(0, file);
    const one = await update(file);
    assert.equal(one.code, 1, one.stdout);
    assert.match(one.stderr, /CAS_SIGNATURES_MISSING/);
    assert.match(
      one.stderr,
      new RegExp(`1 more signature needed \\(1 of 2 present\\), from signers ${hashes[1]}, ${hashes[2]}`),
    );
  });

  it('accepts two signatures, then three on the next version', async () => {
    const v2file = at('v2.yaml');
    await addSignature(1, v2file);
    const two = await update(v2file);
    assert.equal(two.code, 0, two.stderr);
    const v2 = two.stdout.trim();
    const v3file = at('v3.yaml');
    writeFileSync(v3file, session(v2, '# v3'));
    for (const i of [0, 1, 2]) await addSignature(i, v3file);
    const signatures = JSON.parse(readFileSync(`${v3file}.signatures`, 'utf8')).signatures;
    assert.equal(signatures.length, 3);
    const three = await update(v3file);
    assert.equal(three.code, 0, three.stderr);
    assert.notEqual(three.stdout.trim(), v2);
    head = three.stdout.trim();
  });

  it('refuses a forged signature, at the CLI and at the CAS', async () => {
    const file = at('v4.yaml');
    writeFileSync(file, session(head, '# v4'));
    const good = readFileSync(await offlineSign(0, file)).toString('base64');
    // Signer 2's real signature, but over another text (v2): forged for this upload.
    const forged = readFileSync(`${at('v2.yaml')}.s2.sig`).toString('base64');
    const signatures = [
      { signer: readFileSync(signers[0]!.pub, 'utf8'), signature: good },
      { signer: readFileSync(signers[1]!.pub, 'utf8'), signature: forged },
    ];
    const refusedAdd = await veil(
      ['session', 'sign', 'add-signature', file, '--signer', signers[1]!.pub, '--signature', `${at('v2.yaml')}.s2.sig`],
      env,
    );
    assert.equal(refusedAdd.code, 1);
    assert.match(refusedAdd.stderr, /CLI_SIGNATURE/);
    writeFileSync(`${file}.signatures`, JSON.stringify({ signatures }));
    const cli = await update(file);
    assert.match(cli.stderr, new RegExp(`signer ${hashes[1]} in .* does not verify[\\s\\S]*CLI_SIGNATURE`));
    const body = JSON.stringify({ session: readFileSync(file, 'utf8'), signatures });
    const envelope = at('envelope.json');
    writeFileSync(envelope, body);
    const answer = await curlJson(envelope);
    assert.equal(answer.status, 403, answer.body);
    assert.equal(answer.json().error.code, 'CAS_SIGNATURE_INVALID');
    assert.match(answer.json().error.message, new RegExp(`signatures\\[1\\] by signer ${hashes[1]}`));
  });

  it('signs with the CLI identity, or with --key, as scone session sign does', async () => {
    const cliPub = at('cli.pub');
    await openssl(['pkey', '-in', join(env.VEIL_HOME, 'identity.key'), '-pubout', '-out', cliPub]);
    const text = (predecessor?: string) =>
      [
        'name: cli-signed',
        ...(predecessor ? [`predecessor: ${predecessor}`] : []),
        'access_policy:',
        '  update:',
        `    - signer: |\n${block(cliPub).replace(/^ {4}/gm, '')}`,
        `    - signer: |\n${block(signers[0]!.pub).replace(/^ {4}/gm, '')}`,
        '',
      ].join('\n');
    writeFileSync(at('c1.yaml'), text());
    const created = await veil(['session', 'create', '-f', at('c1.yaml')], env);
    assert.equal(created.code, 0, created.stderr);
    writeFileSync(at('c2.yaml'), text(created.stdout.trim()));
    const creatorAlone = await update(at('c2.yaml'));
    assert.match(creatorAlone.stderr, /CAS_SIGNATURES_MISSING/, 'the creator is not in update: it must sign');
    const signed = await veil(['session', 'sign', 'sign-with-cli-identity', at('c2.yaml')], env);
    assert.equal(signed.code, 0, signed.stderr);
    const c2 = await update(at('c2.yaml'));
    assert.equal(c2.code, 0, c2.stderr);
    writeFileSync(at('c3.yaml'), text(c2.stdout.trim()));
    const byKey = ['session', 'sign', 'sign-with-cli-identity', at('c3.yaml'), '--key', signers[0]!.key];
    assert.match((await veil(byKey, env)).stdout, new RegExp(`signer ${hashes[0]} recorded`));
    assert.equal((await update(at('c3.yaml'))).code, 0);
  });

  it('checks the envelope before anything else: signatures bounded, unknown fields refused', async () => {
    const text = readFileSync(at('v1.yaml'), 'utf8');
    const sig = { signer: readFileSync(signers[0]!.pub, 'utf8'), signature: 'AAAA' };
    const cases: Array<[unknown, RegExp]> = [
      [{ session: text, signatures: Array(17).fill(sig) }, /body\.signatures/],
      [{ session: text, signatures: [], extra: 1 }, /extra/],
      [{ session: text, signatures: [{ ...sig, signature: 'not base64!' }] }, /body\.signatures\[0\]\.signature/],
    ];
    for (const [body, pattern] of cases) {
      writeFileSync(at('bad.json'), JSON.stringify(body));
      const answer = await curlJson(at('bad.json'));
      assert.equal(answer.status, 400, answer.body);
      assert.equal(answer.json().error.code, 'CAS_BAD_REQUEST');
      assert.match(answer.json().error.message, pattern);
    }
  });

  async function curlJson(file: string) {
    const id = await opensslIdentity(dir.path, 'curl-user');
    const args = ['-sS', '--cacert', cas.caFile, '--cert', id.cert, '--key', id.key, '-w', '\n%{http_code}'];
    const r = await run('curl', [
      ...args,
      '-H',
      'content-type: application/json',
      '--data-binary',
      `@${file}`,
      `${cas.url}/v1/sessions`,
    ]);
    const cut = r.stdout.lastIndexOf('\n');
    const text = r.stdout.slice(0, cut);
    return { status: Number(r.stdout.slice(cut + 1)), body: text, json: () => JSON.parse(text) };
  }
});
