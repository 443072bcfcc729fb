/**
 * Death passed on by the kernel, for the case no handler of ours sees: `kill -9` of the parent (a crashed or
 * killed `veil up`, a killed `veil run`). `setpriv --pdeathsig KILL` (util-linux ≥ 2.33) asks the kernel to
 * SIGKILL the child when its parent ends; the request survives exec and unshare's user namespace (the e2e test
 * up-lifecycle kills for real), is cleared only by exec of a set-user-ID program, and watches the parent's
 * *thread*: Node spawns on its main thread, which lives exactly as long as the process.
 *
 * The parent check closes the one gap of PR_SET_PDEATHSIG: a parent that died before the request was made.
 * The child compares getppid() with the pid of the process that started it and ends if they differ.
 */
export const PDEATHSIG = ['setpriv', '--pdeathsig', 'KILL', '--'];

/** Perl that ends (status 125) unless the parent is the pid in $ARGV[0], which it shifts off @ARGV. */
export const PARENT_CHECK = 'getppid() == shift(@ARGV) or exit 125;';

/** `argv` started so that it ends when this process ends, however this process ends. */
export function dieWithParent(argv: string[]): string[] {
  const exec = `${PARENT_CHECK} exec { $ARGV[0] } @ARGV; exit 127`;
  return [...PDEATHSIG, 'perl', '-e', exec, String(process.pid), ...argv];
}
