import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { curl, opensslIdentity, startCas, tempDir } from './harness.js';

describe('CAS persistence', () => {
  const dir = tempDir();
  const dataDir = join(dir.path, 'data');
  after(() => dir.cleanup());

  it('keeps sessions, secrets and its identity across a restart', async () => {
    const me = await opensslIdentity(dir.path, 'me');
    const first = await startCas(dataDir, dir.path);
    const yaml =
      'name: kept\nversion: "0.3"\nsecrets:\n  - {name: ca_key, kind: private-key}\n  - {name: ca, kind: x509-ca, private_key: ca_key, export_public: true}\n';
    const created = await curl(first, `${first.url}/v1/sessions`, { identity: me, data: yaml });
    assert.equal(created.status, 201);
    const before = (await curl(first, `${first.url}/v1/values/session=kept`)).json().values.ca.value;
    await first.stop();

    const second = await startCas(dataDir, dir.path);
    try {
      assert.equal(second.fingerprint, first.fingerprint, 'the CAS identity survives restarts');
      const read = await curl(second, `${second.url}/v1/sessions/kept`, { identity: me });
      assert.equal(read.json().hash, created.json().hash);
      const after = (await curl(second, `${second.url}/v1/values/session=kept`)).json().values.ca.value;
      assert.equal(after, before, 'generated secrets are stored, not regenerated');
    } finally {
      await second.stop();
    }
  });

  it('keeps a session that was answered 201 when the CAS is killed with SIGKILL right after', async () => {
    const me = await opensslIdentity(dir.path, 'me2');
    for (let round = 0; round < 3; round++) {
      const cas = await startCas(dataDir, dir.path);
      const name = `killed-${round}`;
      const created = await curl(cas, `${cas.url}/v1/sessions`, {
        identity: me,
        data: `name: ${name}\nversion: "0.3"\nsecrets:\n  - {name: pw, kind: ascii}\n`,
      });
      assert.equal(created.status, 201);
      await cas.stop('SIGKILL');
      const again = await startCas(dataDir, dir.path);
      try {
        const read = await curl(again, `${again.url}/v1/sessions/${name}`, { identity: me });
        assert.equal(read.status, 200, read.body);
        assert.equal(read.json().hash, created.json().hash);
      } finally {
        await again.stop();
      }
    }
  });

  it('refuses to start with the wrong master key, naming the fix', async () => {
    const { veil } = await import('./harness.js');
    const r = await veil(['cas', 'serve', '--listen', '127.0.0.1:0', '--data', dataDir], {
      VEIL_MASTER_KEY: 'ab'.repeat(32),
      VEIL_HOME: join(dir.path, 'h'),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /STORE_MASTER_KEY/);
  });
});
