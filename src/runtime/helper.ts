import { PARENT_CHECK } from './parent-death.js';

/**
 * The namespace helper: a short Perl program that runs inside the private mount namespace `unshare` made,
 * carries out the launch plan the runtime wrote on fd 3 (mounts, injected files, working directory,
 * environment) and then becomes the program — the file the runtime measured, inherited as fd 4 — by exec.
 *
 * Why Perl: a second Node.js process cost ≈ 35 ms of every launch here, and only Perl of what every Debian
 * system has (perl-base is Essential) can exec a file with an argv[0] of our choosing and exactly the
 * policy's environment (bash's `exec -a` adds SHLVL; dash has no `exec -a`). The helper decides nothing: the
 * plan is computed and tested in TypeScript (plan.ts); this only executes its steps, in order.
 * It runs under `setpriv --pdeathsig KILL` and first checks that the runtime that started it is still its
 * parent (see parent-death.ts): the program it becomes then ends when the runtime ends, even by kill -9.
 */
export const HELPER_SOURCE = String.raw`
use strict; use warnings; no warnings 'exec';
use Fcntl qw(O_WRONLY O_CREAT O_TRUNC O_NOFOLLOW F_SETFD FD_CLOEXEC);
sub fail { print STDERR "[VEIL|FATAL] $_[0]\n"; exit 126 }
shift @ARGV;
${PARENT_CHECK}
# fd 5 closes at exec: the runtime then knows the program runs with every mount in place (renewal.ts).
open(our $READY, '>&=', 5) and fcntl($READY, F_SETFD, FD_CLOEXEC);
open(my $in, '<&=', 3) or fail("no launch plan on fd 3: $!");
binmode $in;
my $plan = do { local $/; <$in> } // '';
close $in;
my $at = 0;
sub field {
  my $colon = index($plan, ':', $at);
  my $n = $colon < 0 ? '' : substr($plan, $at, $colon - $at);
  fail('malformed launch plan') unless $n =~ /\A[0-9]+\z/ && $colon + 1 + $n <= length $plan;
  $at = $colon + 1 + $n;
  return substr($plan, $colon + 1, $n);
}
sub run { system(@_) == 0 or fail("'@_' failed") }
my %arity = (mkdir => 1, tmpfs => 2, bind => 2, rbind => 2, symlink => 2, chroot => 1, write => 3, unshield => 5, chdir => 1, env => 2, arg => 1, exec => 0);
my (@argv, %env);
while ($at < length $plan) {
  my $op = field();
  my $arity = $arity{$op} // fail("unknown launch step '$op'");
  my @a = map { field() } 1 .. $arity;
  if ($op eq 'mkdir') { mkdir($a[0], 0755) or $!{EEXIST} or fail("cannot create $a[0]: $! (create it once as root, e.g. sudo mkdir -p $a[0]: it stays empty, the files live on a tmpfs in the namespace)") }
  elsif ($op eq 'tmpfs') {
    fail("bad tmpfs options '$a[1]'") unless $a[1] =~ /\Asize=[0-9]+(,huge=within_size)?\z/;
    run('mount', '-t', 'tmpfs', '-o', "mode=0755,$a[1]", 'tmpfs', $a[0]);
  }
  elsif ($op eq 'bind') { run('mount', '--bind', $a[0], $a[1]) }
  elsif ($op eq 'rbind') { run('mount', '--rbind', $a[0], $a[1]) }
  elsif ($op eq 'symlink') { symlink($a[0], $a[1]) or fail("cannot link $a[1]: $!") }
  elsif ($op eq 'chroot') { chroot($a[0]) or fail("cannot enter the private root $a[0]: $!") }
  elsif ($op eq 'write') {
    sysopen(my $f, $a[0], O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, $a[1]) or fail("cannot write $a[0]: $!");
    binmode $f;
    ((print {$f} $a[2]) && close($f)) or fail("cannot write $a[0]: $!");
    chmod($a[1], $a[0]) or fail("cannot set the mode of $a[0]: $!");
  }
  elsif ($op eq 'unshield') {
    open(my $shield, '|-', $a[0], $a[1], $a[2], $a[3]) or fail("cannot start the file-system shield: $!");
    print {$shield} $a[4];
    close($shield) or exit 126;
  }
  elsif ($op eq 'chdir') { chdir($a[0]) or fail("cannot enter the working directory $a[0]: $!") }
  elsif ($op eq 'env') { $env{$a[0]} = $a[1] }
  elsif ($op eq 'arg') { push @argv, $a[0] }
  elsif ($op eq 'exec') {
    %ENV = %env;
    exec { '/proc/self/fd/4' } @argv;
    fail("cannot start $argv[0]: $!");
  }
}
fail('the launch plan ends without starting the program');
`;
