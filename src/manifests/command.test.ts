import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { splitCommand } from './command.js';

describe('splitCommand', () => {
  it('splits words and honours quotes and backslashes', () => {
    assert.deepEqual(splitCommand('python3  /app/rest_api.py'), ['python3', '/app/rest_api.py']);
    assert.deepEqual(splitCommand(`redis-server --save '' --x "a b" c\\ d`), ['redis-server', '--save', '', '--x', 'a b', 'c d']);
    assert.deepEqual(splitCommand(['a b', 'c']), ['a b', 'c']);
    assert.deepEqual(splitCommand('redis-server --port {{ PORT | default(value="1 2") }}'), ['redis-server', '--port', '{{ PORT | default(value="1 2") }}']);
    assert.deepEqual(splitCommand('redis-server --requirepass $$SCONE::pw$$'), ['redis-server', '--requirepass', '$$SCONE::pw$$']);
  });

  it('refuses what only a shell would understand', () => {
    assert.throws(() => splitCommand('python3 app.py | tee log'), /would need a shell/);
    assert.throws(() => splitCommand('python3 app.py > log'), /would need a shell/);
    assert.throws(() => splitCommand("echo 'open"), /unterminated/);
  });
});
