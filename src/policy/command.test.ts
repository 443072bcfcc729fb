import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandProblem, splitCommand } from './command.js';
import { parseSession } from './parse.js';

describe('splitCommand', () => {
  it('splits words and honours quotes and backslashes', () => {
    assert.deepEqual(splitCommand('python3  /app/rest_api.py'), ['python3', '/app/rest_api.py']);
    assert.deepEqual(splitCommand(`redis-server --save '' --x "a b" c\\ d`), [
      'redis-server',
      '--save',
      '',
      '--x',
      'a b',
      'c d',
    ]);
    assert.deepEqual(splitCommand(['a b', 'c']), ['a b', 'c']);
    assert.deepEqual(splitCommand('run --x="a b"c'), ['run', '--x=a bc']);
  });

  it('keeps placeholders and mesh variables whole', () => {
    assert.deepEqual(splitCommand('redis-server --port {{ PORT | default(value="1 2") }}'), [
      'redis-server',
      '--port',
      '{{ PORT | default(value="1 2") }}',
    ]);
    assert.deepEqual(splitCommand('redis --requirepass $$SCONE::pw$$'), ['redis', '--requirepass', '$$SCONE::pw$$']);
    assert.deepEqual(splitCommand('app --cfg=$$SCONE::c|escape(json)$$'), ['app', '--cfg=$$SCONE::c|escape(json)$$']);
  });

  it('refuses what only a shell would understand, with a policy error at the path given', () => {
    assert.throws(() => splitCommand('python3 app.py | tee log'), { code: 'POLICY_SHAPE', message: /need a shell/ });
    const at = (path: string) => (err: { issues: Array<{ path: string }> }) => err.issues[0]!.path === path;
    assert.throws(() => splitCommand('python3 app.py > log', 'build.command'), at('build.command'));
    assert.equal(commandProblem("echo 'open"), "unterminated ' quote");
    assert.equal(commandProblem('echo "a | b"'), undefined);
  });

  it('is the session language: a command string the runtime could not start is refused at parse time', () => {
    const session = (command: string) => `name: x\nservices:\n  - name: s\n    command: ${JSON.stringify(command)}\n`;
    assert.throws(
      () => parseSession(session('app > log')),
      (err: Error & { code: string }) => {
        return err.code === 'POLICY_SHAPE' && /services\[0\]\.command: '>' would need a shell/.test(err.message);
      },
    );
    assert.deepEqual(parseSession(session('app "a b"')).services?.[0]?.command, 'app "a b"');
  });
});
