import type { KeyType } from './keys.js';

/** The JSON form the CAS stores (sealed at rest) for each secret of a session. */
export type StoredSecret =
  | { kind: 'ascii'; value: string }
  | { kind: 'binary'; value: string /* hex */ }
  | { kind: 'private-key'; keyType: KeyType; value: string /* PKCS#8 DER, base64 */ }
  | {
      kind: 'x509' | 'x509-ca';
      value: string /* certificate DER, base64 */;
      /** Name of the private-key secret of this certificate. */
      privateKey?: string;
      /** Name of the issuing x509-ca secret; absent when self-signed. */
      issuer?: string;
    }
  | StoredPgpKey
  | {
      kind: 'config-fragment';
      /** The fragment's structured value as JSON (filled into attestation, security, access_policy). */
      value: string;
    };

/** An OpenPGP key in every form a placeholder asks for, so that rendering needs no asynchronous parsing. */
export interface StoredPgpKey {
  kind: 'pgp-key';
  /** The ASCII-armored private key. */
  value: string;
  /** The private key's packets, base64. */
  binary: string;
  publicKey: string;
  publicBinary: string;
}

export type SecretKind = StoredSecret['kind'];
export type StoredPrivateKey = Extract<StoredSecret, { kind: 'private-key' }>;
export type StoredCertificate = Extract<StoredSecret, { kind: 'x509' | 'x509-ca' }>;

/**
 * What an import resolves to. An imported CA names its private key inside the exporting session, where this
 * session cannot look it up by name; so when the exporter exports that key too, the resolver attaches it here,
 * and the CA can sign certificates of the importing session.
 */
export type StoredSecretWithKey = StoredSecret & { key?: StoredPrivateKey | undefined };

/** A secret as a policy defines it; the policy module's `Secret` is assignable to it. */
export interface SecretSpec {
  name: string;
  kind?: SecretKind | undefined;
  size?: number | undefined;
  /** Text, or the structured value of a config-fragment. */
  value?: string | unknown[] | Record<string, unknown> | undefined;
  key_type?: KeyType | undefined;
  private_key?: string | undefined;
  issuer?: string | undefined;
  common_name?: string | undefined;
  dns?: string[] | undefined;
  /** 'dns:<name>' or 'ip:<address>' (session language 0.3.10). */
  san?: string[] | undefined;
  endpoint?: 'server' | 'client' | undefined;
  valid_for?: string | undefined;
  migrate?: boolean | undefined;
  import?: { session: string; secret: string } | undefined;
}

export type SecretLookup = (name: string) => StoredSecret | undefined;
