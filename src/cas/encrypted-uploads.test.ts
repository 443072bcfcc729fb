import assert from 'node:assert/strict';
import type { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import type { EncryptedSession } from '../contract/index.js';
import { generateSessionKey, sealSession, sessionRecipient, type SessionRecipient } from '../encryption/index.js';
import { parseSession, sessionHash } from '../policy/index.js';
import { keyHash } from '../secrets/index.js';
import { loadIdentity } from './identity.js';
import { buildApp } from './server.js';
import { loadSessionRecipient } from './session-key.js';
import { tempStore } from './test-store.js';
import { ephemeral, type TestJson } from './testing.js';

const SECRET = 'plaintext-only-the-cas-may-read';
const session = (name: string, extra = '') =>
  `name: ${name}\nversion: "0.3"\nsecrets:\n  - name: pw\n    kind: ascii\n    value: ${SECRET}\n${extra}`;
const BODY_LIMIT = 64 * 1024;

/**
 * PUT /v1/encrypted_sessions against a CAS listening on TLS: what arrives is the envelope (the bytes after TLS are
 * captured at the CAS), the session inside is the one a plain upload makes, and every refusal says why.
 */
describe('CAS: encrypted session uploads', async () => {
  const { store, ctx } = tempStore('veil-encrypted-');
  const identity = await loadIdentity(store, ['127.0.0.1'], new Date());
  const logs: string[] = [];
  const received: Buffer[] = [];
  const owner = ephemeral();
  const agent = new Agent({ connect: { ca: identity.caCertPem, cert: owner.certPem, key: owner.keyPem } });
  let recipient: SessionRecipient;
  let url = '';
  let app: ReturnType<typeof buildApp>;

  before(async () => {
    recipient = await loadSessionRecipient(store, identity.fingerprint);
    const logStream = { write: (line: string) => void logs.push(line) };
    app = buildApp(ctx, identity, {
      logLevel: 'trace',
      logStream,
      sessionRecipient: recipient,
      bodyLimit: BODY_LIMIT,
    });
    app.server.on('secureConnection', (socket: TLSSocket) => socket.on('data', (d: Buffer) => received.push(d)));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = app.server.address();
    url = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  after(async () => {
    await agent.close();
    await app?.close();
  });

  const call = async (method: 'GET' | 'PUT' | 'POST', path: string, body?: string, dispatcher = agent) => {
    const res = await request(`${url}${path}`, { method, dispatcher, ...(body === undefined ? {} : { body }) });
    return { status: res.statusCode, json: (await res.body.json()) as TestJson };
  };
  const seal = (
    text: string,
    to: SessionRecipient = recipient,
    overrides: Partial<EncryptedSession> = {},
    uploader = keyHash(owner.spki),
  ) =>
    sealSession({
      publicKey: to.publicKey,
      casFingerprint: to.casFingerprint,
      uploader,
      contentType: 'application/yaml',
      plaintext: text,
    }).then((e) => JSON.stringify({ ...e, ...overrides }));
  const put = async (text: string) => call('PUT', '/v1/encrypted_sessions', text);

  it('publishes its CA fingerprint and session-encryption key at GET /v1/identity, kept across loads', async () => {
    const { status, json } = await call('GET', '/v1/identity');
    assert.equal(status, 200);
    assert.equal(json.ca_fingerprint, identity.fingerprint);
    assert.equal(json.session_encryption_key, recipient.publicKey.toString('hex'));
    assert.equal(json.session_encryption_key_hash, recipient.keyHash);
    const again = await loadSessionRecipient(store, identity.fingerprint);
    assert.deepEqual(again.publicKey, recipient.publicKey, 'kept in the store, not made anew');
  });

  it('creates the session a plain upload would; only the envelope is on the wire, nothing in the log', async () => {
    received.length = 0;
    const text = session('enc-app');
    const created = await put(await seal(text));
    assert.equal(created.status, 201, JSON.stringify(created.json));
    // The same hash as `veil session calculate-hash` gives for the plaintext: the same session, same creator.
    assert.equal(created.json.hash, sessionHash(parseSession(text), keyHash(owner.spki)));
    const wire = Buffer.concat(received).toString('latin1');
    assert.match(wire, /^PUT \/v1\/encrypted_sessions HTTP\/1\.1/);
    assert.ok(!wire.includes(SECRET) && !wire.includes('enc-app'), 'the request carried no plaintext');
    const plain = await call('POST', '/v1/sessions', session('plain-app'));
    assert.equal(plain.status, 201);
    const read = (name: string) => call('GET', `/v1/sessions/${name}`);
    const [a, b] = [(await read('enc-app')).json.session, (await read('plain-app')).json.session];
    assert.equal(a.replace('enc-app', 'plain-app'), b);
    assert.ok(logs.length > 0 && !logs.join('').includes(SECRET), 'the log holds no plaintext');
  });

  it('updates with the predecessor inside, and refuses a create of an existing name', async () => {
    const current = (await call('GET', '/v1/sessions/enc-app')).json.hash as string;
    const updated = await put(await seal(session('enc-app', `predecessor: ${current}\n`)));
    assert.equal(updated.status, 200, JSON.stringify(updated.json));
    const again = await put(await seal(session('enc-app')));
    assert.equal(again.json.error.code, 'CAS_SESSION_EXISTS');
  });

  it('refuses an envelope for another key or another CAS, naming both', async () => {
    const other = await sessionRecipient(generateSessionKey(), identity.fingerprint);
    const wrongKey = await put(await seal(session('x1'), other));
    assert.equal(wrongKey.status, 422);
    assert.equal(wrongKey.json.error.code, 'CAS_WRONG_RECIPIENT');
    assert.match(wrongKey.json.error.message, new RegExp(`${other.keyHash}.*${recipient.keyHash}`));
    const otherCas = await put(await seal(session('x2'), { ...recipient, casFingerprint: 'a'.repeat(64) }));
    assert.equal(otherCas.json.error.code, 'CAS_WRONG_RECIPIENT');
    assert.match(otherCas.json.error.message, /a{64}/);
    assert.equal(await store.current('x1'), undefined);
  });

  it('refuses a tampered or truncated ciphertext, an unknown suite and unknown fields', async () => {
    const envelope = JSON.parse(await seal(session('x3'))) as EncryptedSession;
    const ct = Buffer.from(envelope.ciphertext, 'base64');
    ct[5]! ^= 1;
    const tampered = await put(JSON.stringify({ ...envelope, ciphertext: ct.toString('base64') }));
    assert.equal(tampered.status, 400);
    assert.equal(tampered.json.error.code, 'CAS_DECRYPTION_FAILED');
    const short = Buffer.from(envelope.ciphertext, 'base64').subarray(0, 20).toString('base64');
    assert.equal(
      (await put(JSON.stringify({ ...envelope, ciphertext: short }))).json.error.code,
      'CAS_DECRYPTION_FAILED',
    );
    const suite = await put(JSON.stringify({ ...envelope, suite: 'HPKE-Base/DHKEM(P-256,HKDF-SHA256)' }));
    assert.equal(suite.json.error.code, 'CAS_ENCRYPTION_UNSUPPORTED');
    assert.match(suite.json.error.message, /not supported by Veil/);
    const extra = await put(JSON.stringify({ ...envelope, signer: 'me' }));
    assert.equal(extra.status, 400);
    assert.match(extra.json.error.message, /body\.signer/);
    assert.equal((await put('name: x3\n')).json.error.code, 'CAS_BAD_REQUEST');
    assert.equal(await store.current('x3'), undefined);
  });

  it('holds the session inside to the body limit, and the envelope to its own', async () => {
    const big = await put(await seal(session('x4', `# ${'p'.repeat(BODY_LIMIT)}\n`)));
    assert.equal(big.status, 413);
    assert.equal(big.json.error.code, 'CAS_PAYLOAD_TOO_LARGE');
    assert.match(big.json.error.message, /inside the encrypted upload/);
    const huge = await put(await seal(session('x5', `# ${'p'.repeat(2 * BODY_LIMIT)}\n`)));
    assert.equal(huge.status, 413);
    const fits = await put(await seal(session('x6', `# ${'p'.repeat(BODY_LIMIT - 200)}\n`)));
    assert.equal(fits.status, 201, 'a session at the limit still fits, encrypted');
  });

  it('needs a TLS client certificate, like every upload', async () => {
    const anonymous = new Agent({ connect: { ca: identity.caCertPem } });
    try {
      const res = await call('PUT', '/v1/encrypted_sessions', await seal(session('x7')), anonymous);
      assert.equal(res.status, 401);
      assert.equal(res.json.error.code, 'CAS_UNAUTHENTICATED');
    } finally {
      await anonymous.close();
    }
  });

  it('is sent by the uploader it names: a carrier with its own certificate is refused, not made CREATOR', async () => {
    const carrier = ephemeral();
    const ci = new Agent({ connect: { ca: identity.caCertPem, cert: carrier.certPem, key: carrier.keyPem } });
    try {
      const envelope = await seal(session('carried'));
      const stolen = await call('PUT', '/v1/encrypted_sessions', envelope, ci);
      assert.equal(stolen.status, 403, JSON.stringify(stolen.json));
      assert.equal(stolen.json.error.code, 'CAS_WRONG_UPLOADER');
      const [author, sender] = [keyHash(owner.spki), keyHash(carrier.spki)];
      assert.match(stolen.json.error.message, new RegExp(`${author}.*${sender}`));
      const relabelled = JSON.stringify({ ...JSON.parse(envelope), uploader: sender });
      const forged = await call('PUT', '/v1/encrypted_sessions', relabelled, ci);
      assert.equal(forged.json.error.code, 'CAS_DECRYPTION_FAILED', 'the uploader is bound, not only named');
      assert.equal(await store.current('carried'), undefined);
      const forCi = await seal(session('carried'), recipient, {}, sender);
      const sent = await call('PUT', '/v1/encrypted_sessions', forCi, ci);
      assert.equal(sent.status, 201, 'an envelope naming the CI identity is sent by CI');
      assert.equal((await store.current('carried'))?.creator, carrier.certPem);
    } finally {
      await ci.close();
    }
  });

  it("refuses an encrypted upload's errors with code, path and position, never its text or values", async () => {
    const broken = `name: leak1\nsecrets:\n  - name: pw\n    kind: ascii\n    value: "${SECRET}\n`;
    const plain = await call('POST', '/v1/sessions', broken);
    assert.ok(JSON.stringify(plain.json).includes(SECRET), 'a plain upload quotes the line (its sender wrote it)');
    const syntax = await put(await seal(broken));
    assert.equal(syntax.json.error.code, 'CAS_POLICY_INVALID');
    assert.ok(!JSON.stringify(syntax.json).includes(SECRET), JSON.stringify(syntax.json));
    assert.match(syntax.json.error.message, /withheld.*line \d+, column \d+/);
    assert.equal(typeof syntax.json.error.issues?.[0]?.line, 'number');
    const schema = await put(await seal(`name: leak2\nversion: "0.3"\nservices: ${SECRET}\n`));
    assert.equal(schema.json.error.code, 'CAS_POLICY_INVALID');
    assert.ok(!JSON.stringify(schema.json).includes(SECRET), JSON.stringify(schema.json));
    assert.equal(schema.json.error.issues?.[0]?.path, 'services');
  });
});
