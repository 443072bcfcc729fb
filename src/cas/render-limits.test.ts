import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { generatePrivateKey, issueCertificate, pemEncode } from '../secrets/index.js';
import { RENDER_LIMITS, renderConfig } from './config.js';
import type { CasError } from './errors.js';
import { identityFromPem } from './identity-of.js';
import { writeSession } from './sessions.js';
import { tempStore } from './test-store.js';

const { store, ctx } = tempStore('veil-render-');
const key = generatePrivateKey();
const notAfter = new Date(Date.now() + 864e5);
const me = identityFromPem(
  pemEncode(
    'CERTIFICATE',
    issueCertificate({ subjectKey: key, commonName: 'me', isCa: false, notBefore: new Date(), notAfter }),
  ),
);

const CHAIN = '$$SCONE::c.chain$$';
/** An import from a session that does not exist: rendering it fails, so reaching it shows rendering went on. */
const UNREACHABLE = '$$SCONE::gone$$';

/** A session whose image has one injection file per entry of `files`, each `count` chains long. */
function chains(name: string, files: number[], tail = ''): string {
  const list = files.map((count, i) => `      - {path: /f/${i}, content: "${CHAIN.repeat(count)}${tail}"}`);
  return [
    `name: ${name}`,
    'services:',
    '  - {name: s, image_name: i, command: run}',
    'images:',
    '  - name: i',
    '    injection_files:',
    ...list,
    'secrets:',
    '  - {name: ck, kind: private-key}',
    '  - {name: ca, kind: x509-ca, private_key: ck}',
    '  - {name: k, kind: private-key}',
    '  - {name: c, kind: x509, private_key: k, issuer: ca}',
    '  - {name: gone, import: {session: nowhere, secret: x}}',
    '',
  ].join('\n');
}

/** The rendered size of one chain, measured once (ECDSA signatures vary by a few bytes, hence the margins). */
let measured: number | undefined;
async function chainBytes(): Promise<number> {
  if (measured === undefined) {
    await writeSession(ctx, chains('one-chain', [1]), me);
    measured = (await renderConfig(store, 'one-chain', 's')).injectionFiles[0]!.content.length;
  }
  return measured;
}

const tooLarge = (limit: string, file: string) => (e: CasError) =>
  e.code === 'CAS_CONFIG_TOO_LARGE' &&
  e.status === 422 &&
  e.message.includes(`${limit} = `) &&
  e.message.includes("service 's'") &&
  e.message.includes(`injection file '${file}'`) &&
  !e.message.includes('BEGIN');

describe('a rendered configuration is bounded', () => {
  it('renders a session under the limits in full', async () => {
    const per = Math.floor((0.9 * RENDER_LIMITS.fileBytes) / (await chainBytes()));
    await writeSession(ctx, chains('under', [per, per]), me);
    const files = (await renderConfig(store, 'under', 's')).injectionFiles;
    assert.equal(files.length, 2);
    assert.ok(files.every((f) => f.content.length <= RENDER_LIMITS.fileBytes));
  });

  it('refuses an injection file that renders past fileBytes, naming the service and the file', async () => {
    const per = Math.ceil((1.1 * RENDER_LIMITS.fileBytes) / (await chainBytes()));
    await writeSession(ctx, chains('file-cap', [1, per]), me);
    await assert.rejects(() => renderConfig(store, 'file-cap', 's'), tooLarge('fileBytes', '/f/1'));
  });

  it('refuses files that each fit but together render past totalBytes', async () => {
    const per = Math.floor((0.9 * RENDER_LIMITS.fileBytes) / (await chainBytes()));
    const files = Math.ceil(RENDER_LIMITS.totalBytes / RENDER_LIMITS.fileBytes) + 1;
    await writeSession(ctx, chains('total-cap', Array(files).fill(per)), me);
    await assert.rejects(() => renderConfig(store, 'total-cap', 's'), tooLarge('totalBytes', `/f/${files - 1}`));
  });

  it('stops rendering at the limit: a failing placeholder after it is never reached', async () => {
    const per = Math.ceil((1.1 * RENDER_LIMITS.fileBytes) / (await chainBytes()));
    await writeSession(ctx, chains('stops', [per], UNREACHABLE), me);
    await assert.rejects(() => renderConfig(store, 'stops', 's'), tooLarge('fileBytes', '/f/0'));
  });

  it('counts text fields too: a command past totalBytes is refused', async () => {
    const per = Math.ceil((1.1 * RENDER_LIMITS.totalBytes) / (await chainBytes()));
    const text = chains('command-cap', []).replace('command: run', () => `command: "run ${CHAIN.repeat(per)}"`);
    await writeSession(ctx, text.replace('    injection_files:\n', '    injection_files: []\n'), me);
    await assert.rejects(
      () => renderConfig(store, 'command-cap', 's'),
      (e: CasError) => e.code === 'CAS_CONFIG_TOO_LARGE' && /totalBytes .* the command$/.test(e.message),
    );
  });
});

describe('a placeholder that does not fit its secret at attestation', () => {
  it('is a 422 naming the service and the placeholder, not a 500', async () => {
    await writeSession(ctx, 'name: exp\nsecrets:\n  - {name: x, kind: ascii, export: [{session: imp}]}\n', me);
    const importer = [
      'name: imp',
      'services:',
      '  - {name: s, command: "run $$SCONE::x.crt$$"}',
      'secrets:',
      '  - {name: x, import: {session: exp, secret: x}}',
      '',
    ].join('\n');
    await writeSession(ctx, importer, me);
    await assert.rejects(
      () => renderConfig(store, 'imp', 's'),
      (e: CasError) =>
        e.code === 'CAS_RENDER_FAILED' &&
        e.status === 422 &&
        /service 's' of session 'imp'/.test(e.message) &&
        e.message.includes('$$SCONE::x.crt$$') &&
        /suffix/.test(e.hint ?? ''),
    );
  });
});
