import type { Finding } from '../issues.js';

const UPGRADE = 'add version: "0.3" at the top';

/**
 * SCONE reads a session without `version` as the session language v0.1. Veil reads v0.3 only; a v0.1
 * session's own fields would otherwise be reported as unknown, so they are named as v0.1's, with the change
 * that makes them v0.3 (POLICY_UNSUPPORTED: v0.1 is not supported by Veil). Only for sessions without `version` (with one, the usual unknown-field rule applies).
 */
export function oldLanguageFindings(value: Record<string, unknown>): Finding[] {
  if (Object.hasOwn(value, 'version')) return [];
  const found: Finding[] = [];
  if (Object.hasOwn(value, 'digest')) {
    const message = `'digest' is of the session language v0.1 (no version given): v0.3 identifies a session by its hash; remove it and ${UPGRADE}`;
    found.push({ path: ['digest'], message, atKey: true, unsupported: true });
  }
  if (Object.hasOwn(value, 'tags')) {
    const message = `'tags' is of the session language v0.1 (no version given): v0.3 has none; remove it and ${UPGRADE}`;
    found.push({ path: ['tags'], message, atKey: true, unsupported: true });
  }
  const images = Array.isArray(value['images']) ? value['images'] : [];
  images.forEach((image, i) => {
    if (image === null || typeof image !== 'object' || !Object.hasOwn(image, 'mrenclaves')) return;
    const message =
      "'mrenclaves' on an image is of the session language v0.1 (no version given): v0.3 lists measurements per " +
      `service; move them to services[].mrenclaves of the services using this image and ${UPGRADE}`;
    found.push({ path: ['images', i, 'mrenclaves'], message, atKey: true, unsupported: true });
  });
  return found;
}
