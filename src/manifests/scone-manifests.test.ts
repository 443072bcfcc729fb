import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { substituteVariables } from '../policy/index.js';
import { type ManifestError, buildBundle, parseMeshManifest, parseServiceManifest } from './index.js';
import { textSites } from './service.js';

/** SCONE's manifests as the tutorials write them (testdata/scone/manifests/, each naming its source). */
const DATA = fileURLToPath(new URL('../../testdata/scone/', import.meta.url));
const MANIFESTS = join(DATA, 'manifests');
const EXAMPLE = fileURLToPath(new URL('../../examples/flask-redis/', import.meta.url));
const read = (path: string) => readFileSync(path, 'utf8');
const root = mkdtempSync(join(tmpdir(), 'veil-scone-manifests-'));
after(() => rmSync(root, { recursive: true, force: true }));

function refusal(f: () => unknown, code: string, ...patterns: RegExp[]): ManifestError {
  let caught: ManifestError | undefined;
  assert.throws(f, (e: ManifestError) => {
    assert.equal(e.code, code, e.message);
    for (const p of patterns) assert.match(e.message, p);
    caught = e;
    return true;
  });
  return caught!;
}

const tutorial = read(join(MANIFESTS, 'service.yaml'));
const parseTutorial = (text: string, cwd = root) => parseServiceManifest(text, 'service.yaml', MANIFESTS, { cwd });

describe("the mesh tutorial's service manifest", () => {
  it('is refused for build.signature only, by name and with why, never ignored', () => {
    const err = refusal(
      () => parseTutorial(tutorial),
      'MANIFEST_UNSUPPORTED',
      /service\.yaml:40:3: build\.signature: signature is not supported by Veil: Veil signs no enclave/,
    );
    assert.equal(err.issues.length, 1);
    refusal(() => parseTutorial(tutorial.replace('sign: true', 'key: target/identity.pem')), 'MANIFEST_UNSUPPORTED');
  });

  it('is accepted with sign: false, keeping # and $ in its values and block scalars', () => {
    const parsed = parseTutorial(tutorial.replace('sign: true', 'sign: false'));
    const local = parsed.manifest.environment.local ?? [];
    assert.equal(local.find((v) => v.name === 'NOPE')?.value, '#NOPE!');
    assert.match(parsed.manifest.injection_files![0]!.content, /^ {2}# not a comment: \$ and # survive\n/);
    assert.deepEqual(parsed.copyFrom, [join(MANIFESTS, 'print_env.py')]);
  });

  it('has no variables in its comments: {{VAR}} in a comment is not one the mesh must give', () => {
    const commented = tutorial
      .replace('sign: true', 'sign: false')
      .replace('kind: genservice', 'kind: genservice # {{NOT_A_VAR}}');
    const texts = textSites(parseTutorial(commented).manifest)
      .map((s) => s.text)
      .join('\n');
    assert.doesNotMatch(texts, /NOT_A_VAR/);
  });

  it("refuses SCONE's aad-token secrets by name", () => {
    const aad = tutorial.replace('sign: true', 'sign: false').replace('      kind: ascii\n', '      kind: aad-token\n');
    refusal(
      () => parseTutorial(aad),
      'MANIFEST_UNSUPPORTED',
      /secrets\.global\[0\]\.kind: kind 'aad-token' is not supported by Veil/,
    );
  });

  it('suggests the field a typo is closest to', () => {
    refusal(
      () => parseTutorial(tutorial.replace('injection_files:', 'injection_file:')),
      'MANIFEST_SHAPE',
      /injection_file: unknown field 'injection_file' — did you mean 'injection_files'\?/,
    );
  });
});

describe('build.copy', () => {
  const manifest = (copy: string) =>
    tutorial.replace('sign: true', 'sign: false').replace('    - print_env.py', `    - ${copy}`);
  const cwd = join(root, 'wd');
  mkdirSync(cwd, { recursive: true });
  writeFileSync(join(cwd, 'print_env.py'), 'print("from the working directory")\n');

  it('is looked up in the working directory first, as sconectl mounts it (/wd), then beside the manifest', () => {
    assert.deepEqual(parseTutorial(manifest('print_env.py'), cwd).copyFrom, [join(cwd, 'print_env.py')]);
    assert.deepEqual(parseTutorial(manifest('print_env.py'), root).copyFrom, [join(MANIFESTS, 'print_env.py')]);
  });

  it('names both places looked in when the file is in neither', () => {
    refusal(
      () => parseTutorial(manifest('gone.py'), cwd),
      'MANIFEST_REFERENCE',
      new RegExp(
        `'gone\\.py' does not exist \\(looked in the working directory ${cwd} and beside the manifest in ${MANIFESTS}\\)`,
      ),
    );
  });

  it('refuses a path out of both', () => {
    refusal(() => parseTutorial(manifest('../errors/tab-indent.yaml'), cwd), 'MANIFEST_REFERENCE', /must be relative/);
    refusal(() => parseTutorial(manifest('/etc/passwd'), cwd), 'MANIFEST_REFERENCE', /must be relative/);
  });
});

describe("the flask tutorial's mesh", () => {
  const target = join(root, 'target');
  const flask = join(EXAMPLE, 'flask', 'service.yaml');
  buildBundle(parseServiceManifest(read(flask), 'flask/service.yaml', join(EXAMPLE, 'flask'), { cwd: root }), {
    target,
    keysDir: join(root, 'keys'),
  });
  /** run.sh's envsubst; its header comment's "$VARIABLES" is no variable (and needs no value). */
  const vars: Record<string, string> = {
    CAS_URL: 'cas.scone-system',
    CAS_KEY: 'ab'.repeat(32),
    UPLOAD_MODE: 'Upload',
    CAS_SESSION_ENCRYPTION_KEY: 'key',
    APP_NAMESPACE: 'pythonapp-1-2',
    RELEASE: 'pythonapp',
    NAMESPACE: 'default',
    APP_IMAGE_REPO: 'veil',
  };
  const template = read(join(MANIFESTS, 'mesh.yaml.template'));
  const mesh = (more: Record<string, string>) => substituteVariables(template, { ...vars, ...more });

  it("says that SCONE's curated redis image carries its manifest inside, and which Veil manifest to use", () => {
    const text = mesh({ SCONECTL_REPO: 'registry.scontain.com/sconectl', VERSION: 'latest' });
    const err = refusal(
      () => parseMeshManifest(text, 'mesh.yaml', target),
      'MANIFEST_UNSUPPORTED',
      /services\[1\]\.image: image 'registry\.scontain\.com\/sconectl\/redis:latest' is not supported by Veil: it is a SCONE-provided image, whose service manifest, policy and secrets templates live inside it/,
      /examples\/flask-redis\/redis\/service\.yaml/,
    );
    assert.equal(err.issues.length, 1);
  });

  it('recognises the template form of the image ($SCONECTL_REPO/redis:$VERSION) too', () => {
    // As run.sh keeps $$SCONE:: placeholders with SCONE='$SCONE': each variable given as itself.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's ${VAR}, as SCONE writes it
    const text = mesh({ SCONECTL_REPO: '$SCONECTL_REPO', VERSION: '${VERSION}' });
    refusal(
      () => parseMeshManifest(text, 'mesh.yaml', target),
      'MANIFEST_UNSUPPORTED',
      /image '\$SCONECTL_REPO\/redis:\$\{VERSION\}'/,
    );
  });

  it('refuses image_secrets and the other image templates by name', () => {
    const text = mesh({ SCONECTL_REPO: 'x', VERSION: 'y' }).replace(
      '    image: veil/python_flask_redis:latest',
      '    image: veil/python_flask_redis:latest\n    image_secrets: secrets_example.yaml\n    helm_chart: chart',
    );
    refusal(
      () => parseMeshManifest(text, 'mesh.yaml', target),
      'MANIFEST_UNSUPPORTED',
      /services\[0\]\.image_secrets: image_secrets \(a secrets template file\) is not supported by Veil: Veil takes a service's secrets from its service manifest/,
      /services\[0\]\.helm_chart: helm_chart \(a chart template\) is not supported by Veil/,
    );
  });
});

describe('mesh fields SCONE reserves or takes from its own images', () => {
  it('are refused by name, each at its place', () => {
    const text = `apiVersion: scone/5.8
kind: mesh
cas: [{name: cas, cas_url: "cas:8081"}]
policy: {namespace: ns, access_policy_name: security/policies/access, maa: "https://maa.example"}
env: []
services:
  - {name: hello, image: repo/hello:1}
repo: {destination: registry.example/app}
extra_policies: [{name: x}]
`;
    const err = refusal(() => parseMeshManifest(text, 'mesh.yaml', join(root, 'none')), 'MANIFEST_UNSUPPORTED');
    assert.deepEqual(
      err.issues.map((i) => `${i.line}:${i.column} ${i.path}`),
      ['4:25 policy.access_policy_name', '4:71 policy.maa', '8:1 repo', '9:1 extra_policies'],
    );
    assert.ok(err.issues.every((i) => / is not supported by Veil: /.test(i.message)));
  });
});

describe('broken manifests', () => {
  for (const [file, says] of [
    ['service-tab-indent.yaml', /:7:1: a tab indents this line/],
    ['service-missing-colon.yaml', /:34:3: .*the ':' after a key is missing here .* line 34: " {2}pwd \/python"/],
    ['service-unclosed-quote.yaml', /:14:14: a quoted string opens here and is not closed/],
  ] as const) {
    it(`${file}: one MANIFEST_YAML error, the root cause`, () => {
      const err = refusal(() => parseTutorial(read(join(DATA, 'errors', file))), 'MANIFEST_YAML', says);
      assert.equal(err.issues.length, 1);
    });
  }
});
