import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { warnPasswordInArgs } from './store-url.js';

describe('a password in a --store URL', () => {
  const warned = (url: string | undefined) => {
    const err: string[] = [];
    warnPasswordInArgs(url, { err: (t) => err.push(t) });
    return err.join('');
  };

  it('is warned about (the process list shows it), and told where it belongs; the password is not repeated', () => {
    for (const url of ['postgres://veil:S3CRET@db:5432/cas', 'postgres://veil@db/cas?password=S3CRET']) {
      const text = warned(url);
      assert.match(text, /holds a password.*PGPASSWORD.*VEIL_CAS_STORE/s, url);
      assert.ok(!text.includes('S3CRET'));
    }
  });

  it('is not warned about when there is none', () => {
    assert.equal(warned('postgres://veil@db:5432/cas'), '');
    assert.equal(warned(undefined), '');
  });
});
