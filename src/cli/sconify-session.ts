import { existsSync } from 'node:fs';
import { isMap, isSeq, parse, parseDocument, stringify, type Document } from 'yaml';
import { REDACTED, SECRET_FIELD_PATHS } from '../policy/index.js';
import { usage } from './errors.js';
import type { Io } from './io.js';

/**
 * sconify_image's default session-template.yml (testdata/scone/sconify/session-template.yml is the fixture it
 * is checked against). Its `fspf_path: /fspf/fs.fspf` is where SCONE's image keeps the shield; Veil's image
 * keeps it elsewhere, and `finishSession` says so when it sets the path.
 */
export const DEFAULT_TEMPLATE = `name: $NAMESPACE/$SESSION
version: "0.3"

# Access control:
#   - only the data owner (CREATOR) can read or update the session
#   - even the data owner cannot read the session secrets (i.e., the volume key and tag) or delete the session

access_policy:
  read:
   - CREATOR
  update:
   - CREATOR

services:
   - name: service
     image_name: service_image
     mrenclaves: [$MRENCLAVE]
     command: "$CMD"
     environment:
        SCONE_MODE: hw
        SCONE_LOG: "7"
$ENVVARS
     fspf_tag: $SCONE_FSPF_TAG
     fspf_key: $SCONE_FSPF_KEY
     fspf_path: /fspf/fs.fspf

images:
   - name: service_image
$INJECTED_FILES

# Import client credentials from DB session.

$SECRETS

security:
  attestation:
    tolerate: [debug-mode, hyperthreading, insecure-igpu, outdated-tcb, software-hardening-needed]
    ignore_advisories: "*"
`;

/** The hooks the script hands envsubst, and only those: any other `$X` in a template stays as it is. */
export const HOOKS = [
  'SCONE_FSPF_KEY',
  'SCONE_FSPF_TAG',
  'SESSION',
  'MRENCLAVE',
  'ENVVARS',
  'CMD',
  'SECRETS',
  'INJECTED_FILES',
  'NAMESPACE',
] as const;
export type Hooks = Record<(typeof HOOKS)[number], string>;

/** envsubst with a shell-format list: `$NAME` and `${NAME}` of the listed names are replaced, nothing else. */
export function renderTemplate(template: string, hooks: Hooks): string {
  return template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, a, b) => {
    const name = (a ?? b) as string;
    return Object.hasOwn(hooks, name) ? hooks[name as keyof Hooks] : match;
  });
}

/**
 * `$ENVVARS` as the script writes `docker run IMAGE env`: `        "KEY": "value"` lines under the template's
 * `environment:`, and the working directory as the service's `pwd:` (the script turns PWD into it), last.
 */
export function envVarsHook(env: Record<string, string>, pwd: string): string {
  // Keys are quoted too: an image's Env key is arbitrary text, and unquoted it could write session fields.
  const lines = Object.entries(env).map(([k, v]) => `        ${JSON.stringify(k)}: ${JSON.stringify(v)}`);
  return [...lines, `     pwd: ${JSON.stringify(pwd)}`].join('\n');
}

/** `$CMD` sits in `command: "$CMD"`: words a shell would split back the same way, escaped for double quotes. */
export function cmdHook(argv: readonly string[]): string {
  const words = argv.map((w) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`));
  return JSON.stringify(words.join(' ')).slice(1, -1);
}

/** SCONE's size syntax: bytes, or a number with k/K/m/M/g/G (powers of 1024). */
export function parseSize(text: string): number | undefined {
  const m = /^(\d{1,12})([kKmMgG]?)$/.exec(text);
  if (!m) return undefined;
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * unit;
}

/** The ranges sconify_image documents (§3.1, ADVANCED). */
export const SCONE_LIMITS = {
  heap: { env: 'SCONE_HEAP', min: 8388608, max: 64424509440, example: '1G' },
  stack: { env: 'SCONE_STACK', min: 32768, max: 8388608, example: '4M' },
} as const;

/** --heap / --stack / --dlopen, validated, as the SCONE_* environment the session carries. */
export function sconeSettings(values: { heap?: string; stack?: string; dlopen?: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ['heap', 'stack'] as const) {
    const text = values[key];
    if (text === undefined) continue;
    const { env, min, max, example } = SCONE_LIMITS[key];
    const bytes = parseSize(text);
    if (bytes === undefined || bytes < min || bytes > max)
      throw usage(
        `--${key} ${text} is not a size in [${min}, ${max}] bytes`,
        `bytes or a number with k, m or g (powers of 1024), e.g. --${key} ${example}`,
      );
    out[env] = text;
  }
  if (values.dlopen !== undefined) {
    if (!/^[012]$/.test(values.dlopen))
      throw usage(`--dlopen ${values.dlopen} is not 0, 1 or 2`, '0: no dlopen, 1: protected libraries, 2: any');
    out['SCONE_ALLOW_DLOPEN'] = values.dlopen;
  }
  return out;
}

/**
 * `--secrets` / `--injectedfiles`: YAML text, as the script takes it, or the name of a file holding it. Text
 * is inserted as it is (it carries its own `secrets:` key and indentation, as the template expects); a plain
 * list is wrapped for the default template.
 */
export function listHook(value: string | undefined, io: Io, what: 'secrets' | 'injectedfiles'): string {
  if (value === undefined) return '';
  const text = !value.includes('\n') && existsSync(value) ? io.readFile(value) : value;
  let parsed: unknown;
  try {
    parsed = parse(text);
  } catch (err) {
    throw usage(`--${what} is not YAML: ${(err as Error).message.split('\n')[0]}`, example(what));
  }
  if (Array.isArray(parsed)) {
    const key = what === 'secrets' ? 'secrets' : 'injection_files';
    const body = stringify({ [key]: parsed }).trimEnd();
    return what === 'secrets' ? body : indent(body, 5);
  }
  const key = what === 'secrets' ? 'secrets' : 'injection_files';
  if (parsed === null || typeof parsed !== 'object' || !(key in parsed))
    throw usage(`--${what} is neither a YAML list nor '${key}:' with one`, example(what));
  return text.trimEnd();
}

function example(what: string): string {
  return what === 'secrets'
    ? "e.g. --secrets '- {name: password, kind: ascii}' (or a file holding it)"
    : 'e.g. --injectedfiles \'- {path: /tls/key.pem, content: "$$SCONE::key$$"}\' (or a file holding it)';
}

function indent(text: string, n: number): string {
  return text
    .split('\n')
    .map((l) => `${' '.repeat(n)}${l}`)
    .join('\n');
}

export interface Finish {
  fspfPath: string;
  fspfTag: string;
  serviceName?: string;
  debug: boolean;
  platforms: string[];
  extraEnv: Record<string, string>;
}

/**
 * What Veil's image needs of the rendered session: the shield where the Veil image keeps it, the --heap/--stack/
 * --dlopen settings, and in debug mode simulation evidence from the listed hosts. Returns the notes to print.
 */
export function finishSession(doc: Document, opts: Finish): string[] {
  const notes: string[] = [];
  const services = doc.get('services');
  if (!isSeq(services)) return notes;
  services.items.forEach((item, i) => {
    if (!isMap(item) || String(item.get('fspf_tag') ?? '') !== opts.fspfTag) return;
    const path = item.get('fspf_path');
    if (path !== opts.fspfPath) {
      if (path !== undefined) notes.push(`fspf_path ${String(path)} is ${opts.fspfPath} in Veil's image`);
      item.set('fspf_path', opts.fspfPath);
    }
    if (i === 0 && opts.serviceName) item.set('name', opts.serviceName);
    for (const [k, v] of Object.entries(opts.extraEnv)) doc.setIn(['services', i, 'environment', k], v);
    if (opts.debug) item.set('platforms', opts.platforms);
  });
  if (opts.debug) doc.setIn(['security', 'attestation', 'mode'], 'none');
  return notes;
}

/**
 * The copy `--session` writes: no secret in it. The shield key stays `$SCONE_FSPF_KEY` (fill it with -e to
 * upload the file again); any other secret-bearing field is left out.
 */
export function redactedCopy(doc: Document, fspfTag: string): string {
  const copy = doc.clone();
  const js = copy.toJS() as unknown;
  for (const steps of SECRET_FIELD_PATHS)
    for (const path of concretePaths(js, steps)) {
      const last = path[path.length - 1];
      const isKey = last === 'fspf_key' && copy.getIn([...path.slice(0, -1), 'fspf_tag']) === fspfTag;
      copy.setIn(path, isKey ? '$SCONE_FSPF_KEY' : REDACTED);
    }
  return copy.toString();
}

function concretePaths(value: unknown, steps: readonly string[]): (string | number)[][] {
  if (steps.length === 0) return [[]];
  if (value === null || typeof value !== 'object') return [];
  const [step, ...rest] = steps;
  const entries: [string | number, unknown][] =
    step === '[]'
      ? Array.isArray(value)
        ? value.map((v, i) => [i, v])
        : []
      : step === '{}'
        ? Object.entries(value)
        : step! in value
          ? [[step!, (value as Record<string, unknown>)[step!]]]
          : [];
  return entries.flatMap(([k, v]) => concretePaths(v, rest).map((p) => [k, ...p]));
}

export { parseDocument };
