import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parseSession } from '../policy/index.js';
import type { Io } from './io.js';
import {
  DEFAULT_TEMPLATE,
  cmdHook,
  envVarsHook,
  finishSession,
  listHook,
  redactedCopy,
  renderTemplate,
  sconeSettings,
} from './sconify-session.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = join(ROOT, 'testdata', 'scone', 'sconify', 'session-template.yml');
const io = { readFile: (p: string) => readFileSync(p, 'utf8') } as Io;
const KEY = 'b'.repeat(64);
const TAG = 'c'.repeat(32);

function render(secrets = '', injected = ''): string {
  return renderTemplate(DEFAULT_TEMPLATE, {
    SCONE_FSPF_KEY: KEY,
    SCONE_FSPF_TAG: TAG,
    SESSION: 'app',
    NAMESPACE: 'clinic',
    MRENCLAVE: 'a'.repeat(64),
    ENVVARS: envVarsHook({ PATH: '/bin', GREETING: 'say "hi"' }, '/app'),
    CMD: cmdHook(['/bin/dash', '-c', 'echo "$GREETING"']),
    SECRETS: secrets,
    INJECTED_FILES: injected,
  });
}

describe('the sconify session template', () => {
  it("is the script's session-template.yml (the fixture)", () => {
    const fixture = readFileSync(FIXTURE, 'utf8').replace(/^(#.*\n)+/, '');
    assert.equal(DEFAULT_TEMPLATE, fixture);
  });

  it('renders only the documented hooks, into a valid session with command, environment and pwd', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: envsubst's braced form, not a JS template
    const text = renderTemplate('$SESSION ${NAMESPACE} $HOME $$SCONE::x$$', {
      ...Object.fromEntries(
        ['SCONE_FSPF_KEY', 'SCONE_FSPF_TAG', 'MRENCLAVE', 'ENVVARS', 'CMD', 'SECRETS'].map((k) => [k, '']),
      ),
      INJECTED_FILES: '',
      SESSION: 's',
      NAMESPACE: 'n',
    } as Parameters<typeof renderTemplate>[1]);
    assert.equal(text, 's n $HOME $$SCONE::x$$');
    const session = parseSession(render(), { file: 't' });
    assert.equal(session.name, 'clinic/app');
    const service = session.services![0]!;
    assert.equal(service.pwd, '/app');
    assert.equal(service.environment!['GREETING'], 'say "hi"');
    assert.equal(service.environment!['SCONE_MODE'], 'hw');
    assert.equal(service.command, `/bin/dash -c 'echo "$GREETING"'`);
  });

  it("cannot be steered by the image's Env: keys and values stay environment", () => {
    const hostile = { 'X: 1\n     mrenclaves: [evil]\nsecurity': 'a"\n     pwd: /etc' };
    const text = renderTemplate(DEFAULT_TEMPLATE, {
      SCONE_FSPF_KEY: KEY,
      SCONE_FSPF_TAG: TAG,
      SESSION: 'app',
      NAMESPACE: 'clinic',
      MRENCLAVE: 'a'.repeat(64),
      ENVVARS: envVarsHook(hostile, '/app'),
      CMD: cmdHook(['/bin/true', 'a"\nb']),
      SECRETS: '',
      INJECTED_FILES: '',
    });
    const service = parseSession(text, { file: 't' }).services![0]!;
    assert.deepEqual(service.mrenclaves, ['a'.repeat(64)]);
    assert.equal(service.pwd, '/app');
    assert.equal(service.environment!['X: 1\n     mrenclaves: [evil]\nsecurity'], 'a"\n     pwd: /etc');
  });

  it('takes --secrets and --injectedfiles as YAML text or a file, as a list or with their key', () => {
    const secrets = listHook('- {name: password, kind: ascii, size: 12}', io, 'secrets');
    const injected = listHook("- {path: /etc/pw, content: '$$SCONE::password$$'}", io, 'injectedfiles');
    const session = parseSession(render(secrets, injected), { file: 't' });
    assert.equal(session.secrets![0]!.name, 'password');
    assert.equal((session.images![0]!.injection_files![0] as { path: string }).path, '/etc/pw');
    const asScript = 'secrets:\n  - name: other\n    kind: ascii\n';
    assert.equal(listHook(asScript, io, 'secrets'), asScript.trimEnd());
    assert.throws(() => listHook('just: a map', io, 'secrets'), /neither a YAML list nor 'secrets:'/);
    assert.throws(() => listHook('[unclosed', io, 'injectedfiles'), /--injectedfiles is not YAML/);
  });

  it('validates --heap, --stack and --dlopen in the documented ranges and names them SCONE_*', () => {
    assert.deepEqual(sconeSettings({ heap: '1G', stack: '4M', dlopen: '1' }), {
      SCONE_HEAP: '1G',
      SCONE_STACK: '4M',
      SCONE_ALLOW_DLOPEN: '1',
    });
    assert.deepEqual(sconeSettings({ heap: '8388608', stack: '32k' }), { SCONE_HEAP: '8388608', SCONE_STACK: '32k' });
    assert.deepEqual(sconeSettings({ heap: '60G', stack: '8M' }), { SCONE_HEAP: '60G', SCONE_STACK: '8M' });
    assert.throws(() => sconeSettings({ heap: '8388607' }), /--heap 8388607 is not a size in \[8388608, 64424509440\]/);
    assert.throws(() => sconeSettings({ heap: '61G' }), /--heap 61G/);
    assert.throws(() => sconeSettings({ stack: '32767' }), /--stack 32767/);
    assert.throws(() => sconeSettings({ stack: '9M' }), /--stack 9M/);
    assert.throws(() => sconeSettings({ heap: '1T' }), /--heap 1T/);
    assert.throws(() => sconeSettings({ dlopen: '3' }), /--dlopen 3 is not 0, 1 or 2/);
  });

  it("puts the shield where Veil's image has it, the settings, and debug mode; says what it changed", () => {
    const doc = parseDocument(render());
    const notes = finishSession(doc, {
      fspfPath: '/opt/veil/shield/fs.fspf',
      fspfTag: TAG,
      debug: true,
      platforms: ['d'.repeat(64)],
      extraEnv: { SCONE_HEAP: '1G' },
    });
    assert.deepEqual(notes, ["fspf_path /fspf/fs.fspf is /opt/veil/shield/fs.fspf in Veil's image"]);
    const session = parseSession(doc.toString(), { file: 't' });
    assert.equal(session.services![0]!.fspf_path, '/opt/veil/shield/fs.fspf');
    assert.equal(session.services![0]!.environment!['SCONE_HEAP'], '1G');
    assert.deepEqual(session.services![0]!.platforms, ['d'.repeat(64)]);
    assert.equal(session.security!.attestation!.mode, 'none');
  });

  it('writes the --session copy without the shield key or any secret value', () => {
    const secrets = listHook('- {name: token, kind: ascii, value: s3cr3t-value}', io, 'secrets');
    const copy = redactedCopy(parseDocument(render(secrets)), TAG);
    assert.ok(!copy.includes(KEY), 'the shield key is in the copy');
    assert.ok(!copy.includes('s3cr3t-value'), 'a secret value is in the copy');
    assert.match(copy, /fspf_key: \$SCONE_FSPF_KEY/);
  });
});

describe("veil sconify's refusals (before any image work)", () => {
  it('refuses --base, --cli, --trace and --las saying why, exit 2', async () => {
    const { main } = await import('./main.js');
    for (const [option, why] of [
      ['--base', /--base is not supported by Veil: Veil's runtime layer brings its own/],
      ['--cli', /--cli is not supported by Veil: Veil encrypts the directories itself/],
      ['--trace', /--trace is not supported by Veil/],
      ['--las', /--las is not supported by Veil: the runtime collects TEE evidence itself/],
    ] as const) {
      let stderr = '';
      const io = {
        ...capture(),
        err: (t: string) => {
          stderr += t;
        },
      };
      assert.equal(await main(['sconify', '--from', 'x', '--to', 'y', '--binary', 'z', option, 'v'], io), 2);
      assert.match(stderr, why);
    }
  });
});

function capture(): Io {
  return {
    env: {},
    out: () => {},
    err: () => {},
    readFile: (p: string) => readFileSync(p, 'utf8'),
    untilSignal: () => new Promise<NodeJS.Signals>(() => {}),
  };
}
