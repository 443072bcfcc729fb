import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeStore } from './open.js';

describe('describeStore', () => {
  it('names scheme, user, host and database, never the password', () => {
    assert.equal(describeStore('postgres://veil:S3CRET@db:5432/cas?sslmode=require'), 'postgres://veil@db:5432/cas');
    assert.equal(describeStore('not a url S3CRET'), 'a store URL that does not parse');
  });
});
