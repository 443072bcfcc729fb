/**
 * A password in a command-line URL is readable by every local user for the life of the process (ps,
 * /proc/PID/cmdline), whatever Veil prints: said once, with where it belongs instead.
 */
export function warnPasswordInArgs(flag: string | undefined, io: { err(text: string): void }): void {
  if (flag === undefined || !holdsPassword(flag)) return;
  io.err(
    '[VEIL|WARNING] the --store URL holds a password, which every local user can read in the process list ' +
      '(ps, /proc/PID/cmdline): pass it in PGPASSWORD, or the whole URL in VEIL_CAS_STORE\n',
  );
}

function holdsPassword(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.password !== '' || parsed.searchParams.has('password');
  } catch {
    return false;
  }
}
