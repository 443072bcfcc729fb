import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { AttestationVariant } from '../../attestation/policy.js';
import { COLLATERAL_OPTIONS, collateralOf } from '../collateral-flags.js';
import { usage } from '../errors.js';
import { normalizeCasUrl, pinCas, pinnedCas, veilHome } from '../home.js';
import { defineCommand } from '../spec.js';

// Where the tests find `veil cas serve` beside the other cas commands (the registry loads it alone).
export { serve } from './cas-serve.js';

/**
 * `veil cas attest URL`: SCONE's flags. A CAS in a TEE is verified by its evidence (measurement options, -C,
 * -G, -S, --only_for_testing-debug as tolerations) and its CA pinned; a CAS without one can only be pinned by
 * the fingerprint the user compared out of band (-c), and the command says so.
 */
export const attest = defineCommand(
  {
    name: 'cas attest',
    usage: ['ADDRESS [MRENCLAVE] (-c FINGERPRINT | measurement options | --only_for_testing-trust-any) [-C] [-G] [-S]'],
    summary: 'verifies the CAS (its TEE evidence bound to its CA key, or the fingerprint) and pins its CA',
    options: {
      c: {
        type: 'string',
        value: 'FINGERPRINT',
        description: "the CA's SHA-256 fingerprint (veil cas serve prints it)",
      },
      'only_for_testing-trust-any': { type: 'boolean', description: 'ONLY FOR TESTING: pin whatever answers' },
      'only_for_testing-debug': { type: 'boolean', description: 'tolerate a debug TEE' },
      'only_for_testing-ignore-signer': { type: 'boolean', description: 'accepted; Veil pins no default signer' },
      C: { type: 'boolean', description: 'tolerate insecure configuration and hyperthreading' },
      G: { type: 'boolean', description: 'tolerate an outdated TCB' },
      S: { type: 'boolean', description: 'tolerate software hardening needed' },
      mrenclave: { type: 'string', multiple: true, value: 'HEX', description: "SGX: the CAS's MRENCLAVE" },
      mrsigner: { type: 'string', value: 'HEX', description: 'SGX: its MRSIGNER' },
      isvprodid: { type: 'string', value: 'N', description: 'SGX: with --mrsigner, its ISVPRODID' },
      isvsvn: { type: 'string', value: 'N', description: 'SGX: with --mrsigner, the lowest ISVSVN' },
      mrtd: { type: 'string', multiple: true, value: 'HEX', description: 'TDX: the MRTD of its TD' },
      rtmr0: { type: 'string', value: 'HEX', description: 'TDX: with --mrtd, RTMR0' },
      rtmr1: { type: 'string', value: 'HEX', description: 'TDX: with --mrtd, RTMR1' },
      rtmr2: { type: 'string', value: 'HEX', description: 'TDX: with --mrtd, RTMR2' },
      measurement: { type: 'string', multiple: true, value: 'HEX', description: 'SEV-SNP: the launch measurement' },
      'host-data': { type: 'string', value: 'HEX', description: 'SEV-SNP: with --measurement, HOST_DATA' },
      'ignore-advisories': { type: 'string', value: 'IDS|*', description: 'advisories to tolerate (comma-separated)' },
      ...COLLATERAL_OPTIONS,
    },
    positionals: true,
  },
  async ({ values, positionals }, io) => {
    const address = positionals[0];
    if (!address)
      throw usage('veil cas attest needs the CAS address', 'veil cas attest https://127.0.0.1:8081 -c <fingerprint>');
    if (positionals[1]) values.mrenclave = [...(values.mrenclave ?? []), positionals[1]]; // SCONE: `scone cas attest ADDRESS [mrenclave]`
    const identity = casIdentityFlags(values);
    const trustAny = values['only_for_testing-trust-any'] === true;
    if (!values.c && !trustAny && identity.length === 0) {
      throw usage(
        'nothing to check the CAS against',
        "pass -c <fingerprint> (printed by 'veil cas serve'), the CAS's measurement (--mrenclave, --mrtd, --measurement), or --only_for_testing-trust-any for a throw-away test CAS",
      );
    }
    const url = normalizeCasUrl(address);
    if (values['only_for_testing-ignore-signer']) {
      io.err(
        "[VEIL|NOTE] --only_for_testing-ignore-signer changes nothing here: Veil pins no default CAS signer (SCONE checks Scontain's MRSIGNER); give the CAS's identity with --mrenclave/--mrsigner, --mrtd or --measurement\n",
      );
    }
    const tolerate = [
      ...(values.C ? ['insecure-configuration', 'hyperthreading'] : []),
      ...(values.G ? ['outdated-tcb'] : []),
      ...(values.S ? ['software-hardening-needed'] : []),
      ...(values['only_for_testing-debug'] ? ['debug-mode'] : []),
    ];
    const { attestCasTee } = await import('../cas-attestation.js');
    const advisories = values['ignore-advisories']?.trim();
    const ignoreAdvisories =
      advisories === '*'
        ? '*'
        : advisories
          ? advisories
              .split(',')
              .map((a) => a.trim())
              .filter(Boolean)
          : undefined;
    const { pin, result } = await attestCasTee(url, {
      fingerprint: values.c,
      trustAny,
      tolerate,
      ignoreAdvisories,
      identity,
      collateral: await collateralOf(values),
      now: new Date(),
    });
    if (!result && !values.c && trustAny)
      io.err(
        `[VEIL|WARNING] ONLY FOR TESTING: the CAS at ${url} was trusted without any check (--only_for_testing-trust-any)\n`,
      );
    pinCas(veilHome(io.env), pin);
    const how = result
      ? `verified ${result.type.toUpperCase()} evidence bound to its CA key${result.tcb ? `, TCB ${result.tcb.status}` : ''}`
      : values.c
        ? 'no TEE evidence: this CAS runs without a TEE and is trusted only by the CA fingerprint you gave'
        : 'no TEE evidence, no fingerprint: NOT VERIFIED';
    io.out(`CAS ${address} at ${url}/ is trustworthy (${how}; CA fingerprint ${pin.fingerprint})\n`);
    return 0;
  },
);

function casIdentityFlags(v: {
  mrenclave?: string[] | undefined;
  mrsigner?: string | undefined;
  isvprodid?: string | undefined;
  isvsvn?: string | undefined;
  mrtd?: string[] | undefined;
  rtmr0?: string | undefined;
  rtmr1?: string | undefined;
  rtmr2?: string | undefined;
  measurement?: string[] | undefined;
  'host-data'?: string | undefined;
}): AttestationVariant[] {
  const hex = (value: string, n: number, flag: string) => {
    if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(value))
      throw usage(`${flag} '${value}' is not ${n} hex digits`, `give the value as veil attestation verify prints it`);
    return value.toLowerCase();
  };
  const int = (value: string | undefined, flag: string) => {
    if (value === undefined) return undefined;
    if (!/^\d{1,5}$/.test(value)) throw usage(`${flag} '${value}' is not a number`, 'e.g. --isvsvn 3');
    return Number(value);
  };
  const variants: AttestationVariant[] = [];
  if (v.mrenclave?.length || v.mrsigner) {
    const isvprodid = int(v.isvprodid, '--isvprodid');
    const isvsvn = int(v.isvsvn, '--isvsvn');
    variants.push({
      ...(v.mrenclave?.length ? { mrenclave: v.mrenclave.map((m) => hex(m, 64, '--mrenclave')) } : {}),
      ...(v.mrsigner
        ? {
            signer: {
              mrsigner: hex(v.mrsigner, 64, '--mrsigner'),
              ...(isvprodid === undefined ? {} : { isvprodid }),
              ...(isvsvn === undefined ? {} : { isvsvn_min: isvsvn }),
            },
          }
        : {}),
    });
  }
  const rtmrs = (['rtmr0', 'rtmr1', 'rtmr2'] as const).filter((r) => v[r] !== undefined);
  if (rtmrs.length > 0 && !v.mrtd?.length)
    throw usage('--rtmr0/1/2 need --mrtd', 'the registers mean something only for a known TD image');
  if (v.mrtd?.length) {
    variants.push({
      tdx: {
        mrtd: v.mrtd.map((m) => hex(m, 96, '--mrtd')),
        ...Object.fromEntries(rtmrs.map((r) => [r, hex(v[r]!, 96, `--${r}`)])),
      },
    });
  }
  if (v['host-data'] && !v.measurement?.length)
    throw usage('--host-data needs --measurement', 'host data alone would match any VM');
  if (v.measurement?.length) {
    variants.push({
      snp: {
        ...(v.measurement?.length ? { measurement: v.measurement.map((m) => hex(m, 96, '--measurement')) } : {}),
        ...(v['host-data'] ? { host_data: hex(v['host-data'], 64, '--host-data') } : {}),
      },
    });
  }
  return variants;
}

/** `veil cas show-certificate [URL]`: the pinned CA, for `curl --cacert` (SCONE: `scone cas show-certificate`). */
export const showCertificate = defineCommand(
  {
    name: 'cas show-certificate',
    usage: ['[URL]'],
    summary: "the pinned CA certificate of the CAS (for curl --cacert); SCONE's scone cas show-certificate",
    options: {},
    positionals: true,
  },
  ({ positionals }, io) => {
    const pin = pinnedCas(veilHome(io.env), positionals[0]);
    io.out(pin.caPem.endsWith('\n') ? pin.caPem : `${pin.caPem}\n`);
    return 0;
  },
);

/** `veil cas image --to REF [--push] [-t DIR]`: the CAS as a container image (OCI layout, pushed on request). */
export const casImage = defineCommand(
  {
    name: 'cas image',
    usage: ['--to IMAGE [--push] [-t DIR]'],
    summary: 'the CAS as a container image (from scratch: runtime + production node_modules)',
    options: {
      to: { type: 'string', value: 'IMAGE', description: 'the image reference to build' },
      push: { type: 'boolean', description: 'push it (else: OCI layout only)' },
      t: { type: 'string', value: 'DIR', description: 'target directory (default ./target)' },
    },
  },
  async ({ values }, io) => {
    if (!values.to) throw usage('--to is required', 'veil cas image --to registry.example/veil/cas:0.1 [--push]');
    const { buildCasImage } = await import('../../images/index.js');
    const built = await buildCasImage({
      to: values.to,
      target: resolve(values.t ?? 'target'),
      cacheDir: join(veilHome(io.env), 'cache'),
      push: values.push === true,
      env: io.env,
    });
    io.out(
      `image ${built.reference}@${built.digest} (${values.push ? 'pushed' : 'not pushed'}; OCI layout ${built.layout})\n`,
    );
    return 0;
  },
);

/** `veil cas chart --image REF [-o DIR] [--yaml DIR --release R --namespace N]`: the CAS's Helm chart. */
export const casChart = defineCommand(
  {
    name: 'cas chart',
    usage: ['--image IMAGE [-o DIR] [--yaml DIR [--release R] [--namespace N]]'],
    summary:
      "the CAS's Helm chart: a StatefulSet with a persistent store and a Service on 8081 (HA on PostgreSQL: " +
      'helm --set store.type=postgres,...)',
    options: {
      image: { type: 'string', value: 'IMAGE', description: 'the CAS image (veil cas image --to ... --push)' },
      o: { type: 'string', value: 'DIR', description: 'where the chart goes (default target/helm-cas)' },
      yaml: { type: 'string', value: 'DIR', description: 'also write the manifests rendered with the defaults' },
      release: {
        type: 'string',
        value: 'R',
        description: 'with --yaml: the release name (default veil; a DNS-1035 label, at most 53 characters)',
      },
      namespace: { type: 'string', value: 'N', description: 'with --yaml: the namespace (default default)' },
    },
  },
  async ({ values }, io) => {
    if (!values.image) throw usage('--image is required', "the CAS image, e.g. from 'veil cas image --to ... --push'");
    const { casChartValues, checkRelease, renderCasManifests, writeCasChart } = await import('../../helm/index.js');
    if (values.release !== undefined) checkRelease(values.release);
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
  },
);
