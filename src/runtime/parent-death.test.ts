import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { HELPER_SOURCE } from './helper.js';
import { dieWithParent } from './parent-death.js';

const status = (argv: string[]) =>
  new Promise<number | null>((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    child.stdio[3]!.on('error', () => undefined);
    (child.stdio[3] as NodeJS.WritableStream).end();
    child.once('exit', (code) => resolve(code));
  });

describe('dieWithParent', () => {
  it('runs the command under setpriv --pdeathsig KILL, with its arguments and status', async () => {
    const argv = dieWithParent(['sh', '-c', 'exit $1', 'sh', '7']);
    assert.deepEqual(argv.slice(0, 4), ['setpriv', '--pdeathsig', 'KILL', '--']);
    assert.equal(await status(argv), 7);
  });

  it('starts nothing when its parent is not the process that asked (it died before the request was made)', async () => {
    const argv = dieWithParent(['sh', '-c', 'exit 0']);
    argv[argv.indexOf(String(process.pid))] = String(process.pid + 1);
    assert.equal(await status(argv), 125);
  });

  it('the namespace helper, too, checks its parent before it reads the launch plan', async () => {
    const helper = ['perl', '-e', HELPER_SOURCE, 'veil-launch'];
    assert.equal(await status([...helper, String(process.pid + 1)]), 125);
    assert.equal(await status([...helper, String(process.pid)]), 126, 'an empty plan, then');
  });
});
