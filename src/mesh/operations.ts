/**
 * What `veil up` prints about operating its CAS: where Prometheus scrapes it and how to get its audit log.
 * The metrics answer without a client certificate (they hold no secret and no session name); the audit log
 * answers its owners' identities (docs in README "Metrics, health and logs" and the audit log's section).
 */
export function operationsLines(casUrl: string): string[] {
  return [
    `[veil] metrics: ${casUrl}/metrics (Prometheus text; no client certificate), health: ${casUrl}/healthz, ` +
      `${casUrl}/readyz; the CAS's CA: veil cas show-certificate ${casUrl}`,
    `[veil] audit log: veil audit export --cas ${casUrl} --out audit.jsonl (or GET ${casUrl}/v1/audit)`,
  ];
}
