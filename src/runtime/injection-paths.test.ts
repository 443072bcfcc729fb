import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSession, type PolicyError } from '../policy/index.js';
import type { RuntimeError } from './errors.js';
import { cleanPath, launchPlan } from './plan.js';

/** Each rule on where an injection file may go, refused on its own and with its own message. */
const refusedWith = (pattern: RegExp) => (e: RuntimeError) => {
  assert.equal(e.code, 'RUNTIME_CONFIG', e.message);
  assert.match(e.message, pattern);
  return true;
};
const notPlain = /is not a plain absolute path/;

describe('runtime: injection file paths', () => {
  for (const dir of ['proc', 'sys', 'dev']) {
    it(`refuses /${dir} and what lies beneath it, naming /${dir}`, () => {
      for (const path of [`/${dir}`, `/${dir}/x`, `/${dir}/self/a/b`]) {
        const message = new RegExp(`"${path}" is inside /${dir}, which the kernel provides`);
        assert.throws(() => cleanPath(path, 'injection file'), refusedWith(message), path);
      }
    });
  }

  it('allows directories whose names only begin like /proc, /sys or /dev', () => {
    for (const path of ['/procedures/x', '/system/x', '/devices/x', '/srv/proc/x', '/app/dev']) {
      assert.equal(cleanPath(path, 'injection file'), path);
    }
  });

  it("refuses '..' anywhere in the path, wherever it would lead", () => {
    for (const path of ['/a/../b', '/tls/..', '/..', '/a/../../etc/shadow', '/a/b/../../proc/self/x']) {
      assert.throws(() => cleanPath(path, 'injection file'), refusedWith(notPlain), path);
    }
  });

  it("refuses '.', '//', a trailing '/' and relative paths", () => {
    for (const path of ['/a/./b', '/tls//key', '/tls/', 'tls/key', '', './key']) {
      assert.throws(() => cleanPath(path, 'injection file'), refusedWith(notPlain), path);
    }
  });

  it('applies to the configuration the CAS sends, before anything is mounted', () => {
    const config = (path: string) => ({
      command: ['prog'],
      environment: {},
      pwd: '/',
      injectionFiles: [{ path, mode: 0o600, content: '' }],
    });
    const secure = { secure: true, tmp: '/tmp' };
    assert.throws(() => launchPlan(config('/sys/kernel/x'), secure), refusedWith(/inside \/sys/));
    assert.throws(() => launchPlan(config('/dev/shm/../x'), { secure: false, tmp: '/tmp' }), refusedWith(notPlain));
    const shielded = { ...config('/tls/k'), fspf: { path: '/proc/fs.fspf', key: 'k', tag: 't' } };
    assert.throws(() => launchPlan(shielded, secure), /fspf_path path "\/proc\/fs.fspf" is inside \/proc/);
  });
});

describe('session language: injection file paths', () => {
  const session = (path: string) =>
    `name: s\nimages:\n  - name: i\n    injection_files:\n      - {path: "${path}", content: x}\n      - "${path}"\n`;
  const invalid = (e: PolicyError) => /must be a plain absolute path/.test(e.message);

  it("refuses '..', '.', '//' and a trailing '/' at upload", () => {
    for (const path of ['/a/../b', '/a/./b', '/a//b', '/a/']) {
      assert.throws(() => parseSession(session(path)), invalid, path);
    }
  });

  it('refuses a relative path at upload', () => {
    assert.throws(() => parseSession(session('tls/key')), /must be an absolute path/);
  });

  it('accepts a plain absolute path', () => {
    assert.equal(parseSession(session('/tls/key')).images?.[0]?.injection_files?.length, 2);
  });
});
