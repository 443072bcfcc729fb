import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startCas } from '../../cas/server.js';
import { attestCas } from '../../runtime/cas-identity.js';
import { usage } from '../errors.js';
import { normalizeCasUrl, pinCas, pinnedCas, veilHome } from '../home.js';
import type { Io } from '../io.js';

export async function casCommand(args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'serve') return serve(rest, io);
  if (sub === 'attest') return attest(rest, io);
  if (sub === 'show-certificate') return showCertificate(rest, io);
  if (sub === 'image') return casImage(rest, io);
  if (sub === 'chart') return casChart(rest, io);
  throw usage(`unknown command 'veil cas ${sub ?? ''}'`, "use 'veil cas serve', 'veil cas attest URL -c FINGERPRINT', 'veil cas show-certificate', 'veil cas image' or 'veil cas chart'");
}

async function serve(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:8081' },
      data: { type: 'string' },
      'master-key-file': { type: 'string' },
      name: { type: 'string', multiple: true },
      'log-level': { type: 'string', default: 'warn' },
      'body-limit': { type: 'string' },
    },
    strict: true,
  });
  const { host, port } = parseListen(values.listen);
  const cas = await startCas({
    host,
    port,
    dataDir: values.data ?? join(veilHome(io.env), 'cas'),
    ...(values['master-key-file'] ? { masterKeyFile: values['master-key-file'] } : {}),
    ...(io.env['VEIL_MASTER_KEY'] ? { masterKeyEnv: io.env['VEIL_MASTER_KEY'] } : {}),
    names: values.name ?? [],
    logLevel: values['log-level'],
    ...(values['body-limit'] ? { bodyLimit: Number(values['body-limit']) } : {}),
  });
  io.out(`CAS listening at ${cas.url}\nCA fingerprint (SHA-256): ${cas.identity.fingerprint}\n`);
  await io.untilSignal();
  await cas.close();
  return 0;
}

export function parseListen(listen: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(listen);
  if (!match) throw usage(`--listen '${listen}' is not HOST:PORT`, 'e.g. --listen 127.0.0.1:8081 (port 0 picks a free one)');
  return { host: match[1]!, port: Number(match[2]) };
}

async function attest(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      c: { type: 'string' },
      'only_for_testing-trust-any': { type: 'boolean' },
      'only_for_testing-debug': { type: 'boolean' },
      'only_for_testing-ignore-signer': { type: 'boolean' },
      C: { type: 'boolean' },
      G: { type: 'boolean' },
      S: { type: 'boolean' },
    },
    strict: true,
  });
  const address = positionals[0];
  if (!address) throw usage('veil cas attest needs the CAS address', 'veil cas attest https://127.0.0.1:8081 -c <fingerprint>');
  if (!values.c && !values['only_for_testing-trust-any']) {
    throw usage('no fingerprint given to check the CAS against', "pass -c <fingerprint> (printed by 'veil cas serve'), or --only_for_testing-trust-any for a throw-away test CAS");
  }
  const url = normalizeCasUrl(address);
  const pin = await attestCas(url, values.c, values['only_for_testing-trust-any'] === true);
  pinCas(veilHome(io.env), pin);
  io.out(`CAS ${address} at ${url}/ is trustworthy (CA fingerprint ${pin.fingerprint})\n`);
  return 0;
}

/** `veil cas show-certificate [URL]`: the pinned CA, for `curl --cacert` (SCONE: `scone cas show-certificate`). */
export async function showCertificate(args: string[], io: Io): Promise<number> {
  const pin = pinnedCas(veilHome(io.env), args[0]);
  io.out(pin.caPem.endsWith('\n') ? pin.caPem : `${pin.caPem}\n`);
  return 0;
}

/** `veil cas image --to REF [--push] [-t DIR]`: the CAS as a container image (OCI layout, pushed on request). */
async function casImage(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { to: { type: 'string' }, push: { type: 'boolean' }, t: { type: 'string' } }, strict: true });
  if (!values.to) throw usage('--to is required', 'veil cas image --to registry.example/veil/cas:0.1 [--push]');
  const { buildCasImage } = await import('../../images/index.js');
  const built = await buildCasImage({ to: values.to, target: resolve(values.t ?? 'target'), cacheDir: join(veilHome(io.env), 'cache'), push: values.push === true, env: io.env });
  io.out(`image ${built.reference}@${built.digest} (${values.push ? 'pushed' : 'not pushed'}; OCI layout ${built.layout})\n`);
  return 0;
}

/** `veil cas chart --image REF [-o DIR] [--yaml DIR --release R --namespace N]`: the CAS's Helm chart. */
async function casChart(args: string[], io: Io): Promise<number> {
  const { values } = parseArgs({ args, options: { image: { type: 'string' }, o: { type: 'string' }, yaml: { type: 'string' }, release: { type: 'string' }, namespace: { type: 'string' } }, strict: true });
  if (!values.image) throw usage('--image is required', "the CAS image, e.g. from 'veil cas image --to ... --push'");
  const { casChartValues, renderCasManifests, writeCasChart } = await import('../../helm/index.js');
  const chartValues = casChartValues(values.image);
  const dir = resolve(values.o ?? join('target', 'helm-cas'));
  writeCasChart(dir, chartValues);
  io.out(`CAS chart written to ${dir} (helm install <release> ${dir})\n`);
  if (values.yaml) {
    const { stringify } = await import('yaml');
    mkdirSync(values.yaml, { recursive: true });
    const docs = renderCasManifests(chartValues, values.release ?? 'veil', values.namespace ?? 'default');
    writeFileSync(join(values.yaml, 'cas.yaml'), docs.map((d) => `---\n${stringify(d)}`).join(''));
    io.out(`manifests written to ${join(values.yaml, 'cas.yaml')}\n`);
  }
  return 0;
}
