import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import { META_FILE, type ShieldError, type Threads, decryptTree, encryptTree } from './index.js';
import { FORMAT, metadataKey } from './format.js';

const root = mkdtempSync(join(tmpdir(), 'veil-fspf-'));
after(() => rmSync(root, { recursive: true, force: true }));
const src = join(root, 'src');
mkdirSync(join(src, 'pkg', 'sub'), { recursive: true });
const files: Record<string, Buffer> = {
  'rest_api.py': Buffer.from('print("patient records")\n'),
  'pkg/empty.txt': Buffer.alloc(0),
  'pkg/sub/big.bin': randomBytes(2 * 1024 * 1024 + 123),
};
for (const [path, data] of Object.entries(files)) writeFileSync(join(src, path), data);
const enc = join(root, 'enc');
const shield = encryptTree(src, enc);
let n = 0;
// Every test runs twice: on the main thread alone, and with every chunk left to worker threads (from: 0 takes
// them on any tree; mainThread: false keeps this thread from deciphering while they start).
const MODES: Array<{ name: string; threads: Threads }> = [
  { name: 'main thread', threads: { from: Number.POSITIVE_INFINITY } },
  { name: 'worker threads', threads: { from: 0, max: 2, mainThread: false } },
];

function copyShield(): string {
  const copy = join(root, `copy${n++}`);
  cpSync(enc, copy, { recursive: true });
  return copy;
}
async function refused(dir: string, code: string, pattern: RegExp, threads: Threads): Promise<void> {
  const out = join(root, `out${n++}`);
  await assert.rejects(
    decryptTree(dir, out, shield, { threads }),
    (e: ShieldError) => e.code === code && pattern.test(e.message),
  );
  if (!existsSync(out)) return;
  // not even a directory: its name is the tree's
  assert.deepEqual(readdirSync(out, { recursive: true }), [], 'nothing decrypted is left behind');
}
const blobOf = (dir: string) => readdirSync(dir).filter((f) => f !== META_FILE);

for (const { name, threads } of MODES)
  describe(`file-system shield (${name})`, () => {
    it('round-trips a tree, and hides names, contents and sizes', async () => {
      assert.match(shield.tag, /^[0-9a-f]{32}$/);
      assert.match(shield.key, /^[0-9a-f]{64}$/);
      const out = join(root, `plain${n++}`);
      await decryptTree(enc, out, shield, { threads });
      for (const [path, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(out, path)), data, path);
      const stored = readdirSync(enc).join(' ');
      assert.doesNotMatch(stored, /rest_api|big|empty/);
      for (const blob of blobOf(enc)) {
        const bytes = readFileSync(join(enc, blob));
        assert.ok(!bytes.includes('patient records'));
        const chunks = Math.ceil(bytes.length / (1024 * 1024 + 28));
        assert.equal((bytes.length - 28 * chunks) % 4096, 0, 'sizes are padded');
      }
    });

    it('refuses a flipped byte, naming the file', async () => {
      const copy = copyShield();
      const small = blobOf(copy).find(
        (b) => statSync(join(copy, b)).size < 10_000 && statSync(join(copy, b)).size > 0,
      )!;
      const bytes = readFileSync(join(copy, small));
      bytes[100] = bytes[100]! ^ 1;
      writeFileSync(join(copy, small), bytes);
      await refused(copy, 'SHIELD_TAMPERED', /'(rest_api\.py|pkg\/empty\.txt)'/, threads);
    });

    it('refuses a flipped byte in the last chunk of a large file and removes what was already written', async () => {
      const copy = copyShield();
      const large = blobOf(copy).find((b) => statSync(join(copy, b)).size > 2 * 1024 * 1024)!;
      const bytes = readFileSync(join(copy, large));
      bytes[bytes.length - 5] = bytes[bytes.length - 5]! ^ 1;
      writeFileSync(join(copy, large), bytes);
      await refused(copy, 'SHIELD_TAMPERED', /'pkg\/sub\/big\.bin' failed authentication in chunk 2/, threads);
    });

    it('writes no plaintext through a link planted where a file goes', async () => {
      const out = join(root, `planted${n++}`);
      mkdirSync(out);
      const elsewhere = join(root, `elsewhere${n++}`);
      writeFileSync(elsewhere, 'untouched');
      symlinkSync(elsewhere, join(out, 'rest_api.py'));
      await assert.rejects(
        decryptTree(enc, out, shield, { threads }),
        (e: NodeJS.ErrnoException) => e.code === 'ELOOP',
      );
      assert.equal(readFileSync(elsewhere, 'utf8'), 'untouched');
    });

    it('decrypts nothing through, and removes nothing behind, a directory link planted in the output', async () => {
      const out = join(root, `planted-dir${n++}`);
      mkdirSync(out);
      const elsewhere = join(root, `elsewhere-dir${n++}`);
      mkdirSync(elsewhere);
      writeFileSync(join(elsewhere, 'empty.txt'), 'not the tree');
      symlinkSync(elsewhere, join(out, 'pkg'));
      await assert.rejects(
        decryptTree(enc, out, shield, { threads }),
        (e: ShieldError) => e.code === 'SHIELD_OUTPUT' && /'pkg' in .* is a link/.test(e.message),
      );
      assert.deepEqual(readdirSync(elsewhere), ['empty.txt']);
      assert.equal(readFileSync(join(elsewhere, 'empty.txt'), 'utf8'), 'not the tree');

      // below a link, mkdir -p would make the tree's directories wherever it leads
      const deep = join(root, `deep-src${n++}`);
      mkdirSync(join(deep, 'lib', 'deep'), { recursive: true });
      writeFileSync(join(deep, 'lib', 'deep', 'x.txt'), 'code');
      const deepEnc = join(root, `deep-enc${n++}`);
      const deepShield = encryptTree(deep, deepEnc);
      const out2 = join(root, `planted-deep${n++}`);
      mkdirSync(out2);
      const target = join(root, `target${n++}`);
      mkdirSync(target);
      symlinkSync(target, join(out2, 'lib'));
      await assert.rejects(
        decryptTree(deepEnc, out2, deepShield, { threads }),
        (e: ShieldError) => e.code === 'SHIELD_OUTPUT',
      );
      assert.deepEqual(readdirSync(target), [], 'not even a directory is made through the link');
    });

    it('is not held by a FIFO planted where a file goes', () => {
      const out = join(root, `fifo${n++}`);
      mkdirSync(out);
      execFileSync('mkfifo', [join(out, 'rest_api.py')]);
      // In a child: an open that blocks would block this test's event loop, and its timeout with it.
      const index = fileURLToPath(new URL('./index.js', import.meta.url));
      const code = `const { decryptTree } = await import(${JSON.stringify(index)});
        await decryptTree(${JSON.stringify(enc)}, ${JSON.stringify(out)}, ${JSON.stringify(shield)}, { threads: ${JSON.stringify(threads)} })
          .then(() => console.log('decrypted'), (e) => console.log(e.code));`;
      const script = join(root, `fifo${n++}.mjs`); // a file, not -e: threads inherit the CLI's options
      writeFileSync(script, code);
      const child = spawnSync(process.execPath, [script], {
        timeout: 10_000,
        encoding: 'utf8',
      });
      assert.equal(child.signal, null, 'the decryption was held');
      assert.equal(child.stdout.trim(), 'ENXIO', child.stderr);
    });

    it('refuses metadata that names a path outside the tree, even when it was sealed with the key', async () => {
      const copy = copyShield();
      const volumeKey = Buffer.from(shield.key, 'hex');
      const sealed = readFileSync(join(copy, META_FILE));
      const decipher = createDecipheriv('aes-256-gcm', metadataKey(volumeKey), sealed.subarray(0, 12));
      decipher.setAAD(Buffer.from(FORMAT));
      decipher.setAuthTag(sealed.subarray(12, 28));
      const metadata = JSON.parse(
        Buffer.concat([decipher.update(sealed.subarray(28)), decipher.final()]).toString(),
      ) as {
        files: Array<{ path: string }>;
      };
      metadata.files[0]!.path = '../escaped.txt';
      const nonce = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', metadataKey(volumeKey), nonce);
      cipher.setAAD(Buffer.from(FORMAT));
      const body = Buffer.concat([cipher.update(JSON.stringify(metadata)), cipher.final()]);
      const tag = cipher.getAuthTag();
      writeFileSync(join(copy, META_FILE), Buffer.concat([nonce, tag, body]));
      const out = join(root, `out${n++}`);
      await assert.rejects(
        decryptTree(copy, out, { key: shield.key, tag: tag.toString('hex') }, { threads }),
        (e: ShieldError) => e.code === 'SHIELD_TAMPERED' && /outside the tree/.test(e.message),
      );
      assert.ok(!existsSync(join(root, 'escaped.txt')));
    });

    it('refuses added, removed and renamed files', async () => {
      const added = copyShield();
      writeFileSync(join(added, 'ffff.enc'), 'x');
      await refused(added, 'SHIELD_UNEXPECTED', /ffff\.enc/, threads);
      const removed = copyShield();
      rmSync(join(removed, blobOf(removed)[0]!));
      await refused(removed, 'SHIELD_MISSING', /is missing/, threads);
      const renamed = copyShield();
      renameSync(join(renamed, blobOf(renamed)[0]!), join(renamed, '00.enc'));
      await refused(renamed, 'SHIELD_UNEXPECTED', /00\.enc/, threads);
    });

    it('refuses an older copy of the tree against the newer policy', async () => {
      const v1 = copyShield();
      writeFileSync(join(src, 'rest_api.py'), 'print("v2")\n');
      const v2 = encryptTree(src, join(root, `v2-${n++}`), Buffer.from(shield.key, 'hex'));
      writeFileSync(join(src, 'rest_api.py'), files['rest_api.py']!);
      const out = join(root, `out${n++}`);
      await assert.rejects(
        decryptTree(v1, out, v2, { threads }),
        (e: ShieldError) => e.code === 'SHIELD_TAMPERED' && /tag/.test(e.message),
      );
    });

    it('refuses a wrong key or tag without decrypting anything', async () => {
      await assert.rejects(
        decryptTree(enc, join(root, `x${n++}`), { key: shield.key, tag: '0'.repeat(32) }, { threads }),
        /tag/,
      );
      await assert.rejects(
        decryptTree(enc, join(root, `y${n++}`), { key: 'f'.repeat(64), tag: shield.tag }, { threads }),
        /failed authentication/,
      );
    });
  });
