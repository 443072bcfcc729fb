import { memoryAuditLog } from './audit-testing.js';
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CasError } from './errors.js';
import { identityFromPem, type ClientIdentity } from './identity-of.js';
import { writeSession, type CasContext } from './sessions.js';
import type { Store } from './store/index.js';
import { tempStore } from './test-store.js';
import { ephemeral } from './testing.js';

/**
 * A write is judged by sessions it read before its slow steps (the namespace session, import sources); one of
 * them changing before the write lands is seen by the store's append, which compares their heads as it writes.
 */
const { store: real, ctx: direct } = tempStore('veil-judged-writes-');
let meanwhile: (() => Promise<unknown>) | undefined;
/** The store, but with `meanwhile` run (once) just before an append: another write landing in between. */
const store = new Proxy(real, {
  get(target, prop) {
    if (prop === 'append') {
      return async (...args: Parameters<Store['append']>) => {
        const change = meanwhile;
        meanwhile = undefined;
        await change?.();
        return target.append(...args);
      };
    }
    const value = Reflect.get(target, prop) as unknown;
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
const ctx: CasContext = { store, now: () => new Date(), audit: memoryAuditLog() };
const someone = (): ClientIdentity => identityFromPem(ephemeral().certPem);
const [alice, bob] = [someone(), someone()];
const busy = (name: string) => (e: CasError) =>
  e.code === 'CAS_BUSY' && e.message.includes(`session '${name}' that this write reads changed meanwhile`);

describe('writeUpload: the sessions a write was judged by', () => {
  it('refuses a create when the namespace revokes create_sessions meanwhile', async () => {
    const ns = (who: string, predecessor = '') =>
      `name: ns\n${predecessor}access_policy: {create_sessions: [${who}]}\n`;
    const v1 = await writeSession(direct, ns(bob.keyHash), alice);
    meanwhile = () => writeSession(direct, ns('NONE', `predecessor: ${v1.hash}\n`), alice);
    await assert.rejects(writeSession(ctx, 'name: ns/app\n', bob), busy('ns'));
    assert.equal(await real.current('ns/app'), undefined);
    await assert.rejects(writeSession(ctx, 'name: ns/app\n', bob), { code: 'CAS_FORBIDDEN' });
  });

  it('refuses a leaf issued by an imported CA when its exporter revokes the export meanwhile', async () => {
    const ca = (to: string, predecessor = '') =>
      [
        'name: ca',
        `${predecessor}secrets:`,
        `  - {name: ca_key, kind: private-key, export: [{session: ${to}}]}`,
        `  - {name: ca, kind: x509-ca, private_key: ca_key, export: [{session: ${to}}]}`,
        '',
      ].join('\n');
    const v1 = await writeSession(direct, ca('leaf'), alice);
    meanwhile = () => writeSession(direct, ca('other', `predecessor: ${v1.hash}\n`), alice);
    const leaf = [
      'name: leaf',
      'secrets:',
      '  - {name: k, kind: private-key}',
      '  - {name: c, import: {session: ca, secret: ca}}',
      '  - {name: l, kind: x509, private_key: k, issuer: c}',
      '',
    ].join('\n');
    await assert.rejects(writeSession(ctx, leaf, alice), busy('ca'));
    assert.equal(await real.current('leaf'), undefined);
    await assert.rejects(writeSession(ctx, leaf, alice), /does not export it to 'leaf'/);
  });

  it('writes when nothing it read changed', async () => {
    meanwhile = () => writeSession(direct, 'name: unrelated\n', alice);
    assert.equal((await writeSession(ctx, 'name: ns2\n', bob)).created, true);
  });
});
