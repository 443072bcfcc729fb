import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { META_FILE, decryptTree, encryptTree, type ShieldError, type Threads } from './index.js';
import { CHUNK, FORMAT, PAD, chunkAad, chunkNonce, fileKey, metadataKey, type Metadata } from './format.js';

/**
 * The policy's fspf_tag covers file contents through the blob digests in the metadata. Someone who knows
 * fspf_key but cannot change the policy can seal other content under a blob's own name and key — every
 * chunk then authenticates — and only the digest check refuses it.
 */
const root = mkdtempSync(join(tmpdir(), 'veil-fspf-digest-'));
after(() => rmSync(root, { recursive: true, force: true }));
// Every test runs twice: on the main thread alone, and with every chunk left to worker threads (from: 0 takes
// them on any tree; mainThread: false keeps this thread from deciphering while they start).
const MODES: Array<{ name: string; threads: Threads }> = [
  { name: 'main thread', threads: { from: Number.POSITIVE_INFINITY } },
  { name: 'worker threads', threads: { from: 0, max: 2, mainThread: false } },
];

function sealOne(key: Buffer, blob: string, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', fileKey(key, blob), chunkNonce(0));
  cipher.setAAD(chunkAad(blob, 0, 1));
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([chunkNonce(0), cipher.getAuthTag(), body]);
}

for (const { name: mode, threads } of MODES)
  describe(`file-system shield: blob digests (${mode})`, () => {
    it('refuses a blob re-sealed with the key under its own name: the policy tag names the old content', async () => {
      const src = join(root, `src-${mode}`);
      mkdirSync(src);
      writeFileSync(join(src, 'app.py'), 'print("patient records")\n');
      const enc = join(root, `enc-${mode}`);
      const shield = encryptTree(src, enc);
      const [name] = readdirSync(enc).filter((f) => f !== META_FILE);
      const evil = Buffer.alloc(PAD);
      evil.write('print("all records")\n');
      writeFileSync(join(enc, name!), sealOne(Buffer.from(shield.key, 'hex'), name!.replace(/\.enc$/, ''), evil));
      const refused = (e: ShieldError) =>
        e.code === 'SHIELD_TAMPERED' && /'app\.py' is not the version the metadata names/.test(e.message);
      await assert.rejects(decryptTree(enc, join(root, `out-${mode}`), shield, { threads }), refused);
    });

    for (const [label, size] of [
      ['a small file', 0],
      ['a file split across two ranges', 5 * CHUNK - 10],
    ] as const)
      it(`reports ${label} of the wrong version before a tampered file after it in the same range`, async () => {
        const src = join(root, `order-src-${mode}-${size}`);
        mkdirSync(src);
        writeFileSync(join(src, 'a.bin'), size ? randomBytes(size) : 'first\n');
        writeFileSync(join(src, 'b.txt'), 'second\n');
        const enc = join(root, `order-enc-${mode}-${size}`);
        const shield = encryptTree(src, enc);
        // Whoever holds the key re-seals the metadata naming another version of a.bin, and b.txt is tampered:
        // a.bin comes first in tree order, so its digest is the failure reported, though the range that holds
        // a.bin's last chunk stops at b.txt's.
        const meta = openMetadata(enc, shield.key);
        const a = meta.files.find((f) => f.path === 'a.bin')!;
        const b = meta.files.find((f) => f.path === 'b.txt')!;
        a.digest = '00'.repeat(32);
        const tag = sealMetadata(enc, shield.key, meta);
        const blob = readFileSync(join(enc, `${b.blob}.enc`));
        blob[40] = blob[40]! ^ 1;
        writeFileSync(join(enc, `${b.blob}.enc`), blob);
        await assert.rejects(
          decryptTree(enc, join(root, `order-out-${mode}-${size}`), { key: shield.key, tag }, { threads }),
          (e: ShieldError) =>
            e.code === 'SHIELD_TAMPERED' && /^'a\.bin' is not the version the metadata names/.test(e.message),
        );
      });
  });

function openMetadata(enc: string, key: string): Metadata {
  const sealed = readFileSync(join(enc, META_FILE));
  const decipher = createDecipheriv('aes-256-gcm', metadataKey(Buffer.from(key, 'hex')), sealed.subarray(0, 12));
  decipher.setAAD(Buffer.from(FORMAT));
  decipher.setAuthTag(sealed.subarray(12, 28));
  return JSON.parse(Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString('utf8'));
}

/** Seals `meta` as the tree's metadata under the key, and returns the tag a policy would then pin. */
function sealMetadata(enc: string, key: string, meta: Metadata): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', metadataKey(Buffer.from(key, 'hex')), nonce);
  cipher.setAAD(Buffer.from(FORMAT));
  const body = Buffer.concat([cipher.update(JSON.stringify(meta)), cipher.final()]);
  const tag = cipher.getAuthTag();
  writeFileSync(join(enc, META_FILE), Buffer.concat([nonce, tag, body]));
  return tag.toString('hex');
}
