import { parseSession, type Session } from '../policy/index.js';
import type { SessionRecord } from './store/index.js';

/** Stored sessions were validated when they were created; parsing them again is only for access, so cache it. */
const cache = new Map<string, Session>();
const LIMIT = 4096;

export function sessionOf(record: SessionRecord): Session {
  const key = `${record.name}\0${record.hash}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const session = parseSession(record.text);
  if (cache.size >= LIMIT) cache.clear();
  cache.set(key, session);
  return session;
}
