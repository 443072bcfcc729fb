import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestationError } from '../errors.js';
import { convergeStatuses, platformLevel } from './tcb.js';
import type { TcbInfo } from './collateral.js';
import type { PckExtension } from './pck.js';

describe('convergeStatuses', () => {
  it('takes the most severe, OutOfDateConfigurationNeeded counting as both', () => {
    assert.equal(convergeStatuses(['UpToDate', 'UpToDate']), 'UpToDate');
    assert.equal(convergeStatuses(['SWHardeningNeeded', 'UpToDate']), 'SWHardeningNeeded');
    assert.equal(convergeStatuses(['ConfigurationNeeded', 'SWHardeningNeeded']), 'ConfigurationAndSWHardeningNeeded');
    assert.equal(
      convergeStatuses(['ConfigurationAndSWHardeningNeeded', 'UpToDate']),
      'ConfigurationAndSWHardeningNeeded',
    );
    assert.equal(convergeStatuses(['OutOfDate', 'UpToDate', 'UpToDate']), 'OutOfDate');
    assert.equal(convergeStatuses(['ConfigurationNeeded', 'OutOfDate']), 'OutOfDateConfigurationNeeded');
    assert.equal(
      convergeStatuses(['OutOfDateConfigurationNeeded', 'SWHardeningNeeded']),
      'OutOfDateConfigurationNeeded',
    );
    assert.equal(convergeStatuses(['OutOfDate', 'Revoked']), 'Revoked');
  });
});

describe('platformLevel', () => {
  const level = (sgx: number, pce: number, tdx: number[] | undefined, status: 'UpToDate' | 'OutOfDate') => ({
    sgx: Array(16).fill(sgx) as number[],
    pcesvn: pce,
    ...(tdx ? { tdx } : {}),
    tcbDate: '2024-01-01T00:00:00Z',
    tcbStatus: status,
    advisoryIDs: [],
  });
  const info = (levels: TcbInfo['tcbLevels']): TcbInfo => ({
    id: 'TDX',
    version: 3,
    issueDate: new Date(0),
    nextUpdate: new Date(0),
    fmspc: '00',
    pceId: '0000',
    tcbEvaluationDataNumber: 1,
    tcbLevels: levels,
  });
  const pck = (svn: number, pce: number): PckExtension => ({
    ppid: Buffer.alloc(16),
    compSvn: Array(16).fill(svn) as number[],
    pceSvn: pce,
    cpuSvn: Buffer.alloc(16),
    pceId: '0000',
    fmspc: '00',
    sgxType: 0,
  });

  it('chooses the first level met, in the order given', () => {
    const i = info([level(5, 10, undefined, 'UpToDate'), level(3, 10, undefined, 'OutOfDate')]);
    assert.equal(platformLevel(i, pck(5, 10)).tcbStatus, 'UpToDate');
    assert.equal(platformLevel(i, pck(4, 10)).tcbStatus, 'OutOfDate');
  });

  it('names the SVN that is below every level', () => {
    const i = info([level(5, 10, undefined, 'UpToDate'), level(3, 10, undefined, 'OutOfDate')]);
    assert.throws(
      () => platformLevel(i, pck(2, 10)),
      (e: unknown) =>
        e instanceof AttestationError && e.code === 'ATTESTATION_TCB' && /component 1 SVN 2 < 3/.test(e.message),
    );
    assert.throws(() => platformLevel(i, pck(9, 9)), /PCESVN 9 < 10/);
  });

  it('TDX: compares TEE_TCB_SVN from index 2 when a module identity is named', () => {
    const tdx = [9, 9, 1, ...Array(13).fill(0)] as number[];
    const i = info([level(0, 0, tdx, 'UpToDate')]);
    const tee = Buffer.from([3, 1, 1, ...Array(13).fill(0)]);
    assert.equal(platformLevel(i, pck(0, 0), tee).tcbStatus, 'UpToDate');
    assert.throws(
      () => platformLevel(i, pck(0, 0), Buffer.from([3, 0, 1, ...Array(13).fill(0)])),
      /TEE_TCB_SVN\[0\] 3 < 9/,
    );
  });
});
