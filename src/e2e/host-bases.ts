import { readFileSync } from 'node:fs';
import { assembleImage, buildLayer, hostBaseImage, parseReference, pushImage, type Image } from '../images/index.js';
import { run } from './harness.js';

/**
 * The example's base images, made from this machine's Debian packages (no registry on the Internet is reachable
 * from the tests): each program with its library closure (images/host-base.ts), pushed to a test registry.
 */
const PYTHON = '/usr/bin/python3';
/**
 * Parts of the standard library no service imports: test suites, GUIs, bytecode caches (Python rebuilds them),
 * and config-3.11-* (the static libpython for building extensions: half of the library's bytes).
 */
const STDLIB_UNUSED =
  /\/(__pycache__|test|tests|idlelib|tkinter|turtledemo|ensurepip|lib2to3|pydoc_data|config-3\.\d+-.*)$/;

/** python3 with its standard library and the Debian packages (python3-flask, python3-redis) the API imports. */
export async function pythonBase(): Promise<Image> {
  return hostBaseImage({
    paths: [PYTHON, ...(await importedPackages(['flask', 'redis', 'werkzeug.exceptions']))],
    exclude: (p) => STDLIB_UNUSED.test(p),
    env: ['PATH=/usr/bin'],
  });
}

/** Debian's redis-server with every library it links (OpenSSL, jemalloc, systemd's, ...). */
export function redisBase(): Promise<Image> {
  return hostBaseImage({ paths: ['/usr/bin/redis-server'], env: ['PATH=/usr/bin'] });
}

/** What README's section calls the failing case: the binary alone, as a distroless base without its libraries. */
export async function bareRedisBase(): Promise<Image> {
  const layer = await buildLayer([
    { type: 'file', path: '/usr/bin/redis-server', mode: 0o755, data: readFileSync('/usr/bin/redis-server') },
  ]);
  return assembleImage(undefined, [layer], (c) => ({ ...c, Env: ['PATH=/usr/bin'] }), ['redis-server only']);
}

/**
 * The standard library's directory, and the top-level package directories under dist-packages that importing
 * `modules` loads, as Debian's python3 finds them: whole directories, so what a package imports lazily
 * (werkzeug's routing, redis' ssl) is there too.
 */
async function importedPackages(modules: string[]): Promise<string[]> {
  const script = [
    'import importlib, sys, sysconfig',
    `for m in ${JSON.stringify(modules)}: importlib.import_module(m)`,
    'roots = {sysconfig.get_paths()["stdlib"]}',
    'for m in list(sys.modules.values()):',
    '    f = getattr(m, "__file__", None) or ""',
    '    if "/dist-packages/" in f:',
    '        head, rest = f.split("/dist-packages/", 1)',
    '        top = rest.split("/")[0]',
    '        if not top.startswith("_distutils"): roots.add(head + "/dist-packages/" + top)',
    'print("\\n".join(sorted(roots)))',
  ].join('\n');
  const r = await run(PYTHON, ['-c', script]);
  if (r.code !== 0) throw new Error(`${PYTHON} cannot import ${modules.join(', ')}: ${r.stderr}`);
  return r.stdout.split('\n').filter(Boolean);
}

export async function pushBase(registry: string, name: string, image: Image): Promise<string> {
  const reference = `${registry}/base/${name}:1`;
  await pushImage(parseReference(reference), image);
  return reference;
}
