import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { opensslIdentity, tempDir } from './harness.js';
import { startPostgres, startStandby, type Postgres, type Standby } from './postgres.js';
import { CasHttp, lostWrites, startReplicas, writeThrough, type ReplicaSet, type WriteCounts } from './replicas.js';

/**
 * The PostgreSQL primary fails (kill -9) under writes through two CAS replicas; its streaming standby
 * (pg_basebackup -R) is promoted and the replicas are started again with the standby's URL — `pg` takes one
 * host per URL (no libpq multi-host list or target_session_attrs), so pointing the CAS at the new primary is
 * the operator's (or the Service's) move.
 *
 * The standby is synchronous (synchronous_standby_names): the primary acknowledges a commit only once the
 * standby has it. With asynchronous replication the primary answers first and streams after, so the last
 * commits the CAS acknowledged (201) can be missing on the standby when the primary dies — acknowledged
 * writes would be lost by the failover.
 */
describe('CAS on PostgreSQL failing over to a streaming standby', () => {
  const dir = tempDir('veil-failover-');
  const keyFile = join(dir.path, 'master.key');
  let primary: Postgres | undefined;
  let standby: Standby | undefined;
  const sets: ReplicaSet[] = [];
  let http: CasHttp | undefined;
  let me: { cert: string; key: string };
  after(async () => {
    await http?.close();
    for (const s of sets) await s.stop();
    await primary?.stop();
    await standby?.stop();
    dir.cleanup();
  });

  it('loses no acknowledged write; clients retry until the replicas serve from the promoted standby', async () => {
    writeFileSync(keyFile, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    primary = await startPostgres();
    const url = await primary.createDatabase('cas');
    standby = await startStandby(primary, { synchronous: true });
    const before = await startReplicas(2, { url, keyFile, dir: dir.path, env: primary.env() });
    sets.push(before);
    me = await opensslIdentity(dir.path, 'me');
    http = new CasHttp(before.replicas[0]!.caFile, me);
    let serving = before.replicas;
    let stop = false;
    const writing = writeThrough(http, () => serving, { writers: 4, prefix: 'fo', until: () => stop });
    writing.catch(() => undefined);
    try {
      await new Promise((r) => setTimeout(r, 1_500));
      await primary.crash();
      const failedOverAt = Date.now();
      await untilUnready(http, before.replicas[0]!.url);
      serving = await failOver(standby, before);
      const downtime = Date.now() - failedOverAt;
      await new Promise((r) => setTimeout(r, 1_000));
      stop = true;
      await report(await writing, downtime);
    } finally {
      stop = true;
    }
  });

  async function failOver(standby: Standby, before: ReplicaSet) {
    await standby.promote();
    const standbyUrl = standby.url('cas');
    const afterSet = await startReplicas(2, { url: standbyUrl, keyFile, dir: dir.path, env: standby.env() });
    sets.push(afterSet);
    assert.equal(afterSet.replicas[0]!.fingerprint, before.replicas[0]!.fingerprint, 'the CA came over');
    return afterSet.replicas;
  }

  async function report(counts: WriteCounts, downtime: number) {
    const afterSet = sets[1]!;
    const http = new CasHttp(afterSet.replicas[0]!.caFile, me);
    const ready = await http.send(`${afterSet.replicas[1]!.url}/v1/health/ready`, 'GET');
    assert.deepEqual([ready.status, ready.json], [200, { ready: true }]);
    const lost = await lostWrites(http, afterSet.replicas[0]!, counts.acknowledged);
    console.log(
      `# acknowledged ${counts.acknowledged.size}, lost ${lost.length}, retried ${counts.retries}, ` +
        `unknown outcome then found ${counts.unknownOutcome}; promote + replicas restarted in ${downtime} ms`,
    );
    assert.deepEqual(lost, []);
    await http.close();
    assert.ok(counts.acknowledged.size > 20, 'writes went on');
  }
});

/** The replica's readiness turns 503 once its connections notice the primary is gone. */
async function untilUnready(http: CasHttp, url: string): Promise<void> {
  const end = Date.now() + 15_000;
  for (;;) {
    const answer = await http.send(`${url}/v1/health/ready`, 'GET');
    if (answer.status === 503) return assert.equal(answer.json.error.code, 'CAS_STORE_UNAVAILABLE');
    if (Date.now() > end) throw new Error('readiness stayed 200 with the primary killed');
    await new Promise((r) => setTimeout(r, 100));
  }
}
