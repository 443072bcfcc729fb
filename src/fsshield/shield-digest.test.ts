import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { META_FILE, decryptTree, encryptTree, type ShieldError, type Threads } from './index.js';
import { PAD, chunkAad, chunkNonce, fileKey } from './format.js';

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
  });
