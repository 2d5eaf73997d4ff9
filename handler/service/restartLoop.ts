/**
 * The POSIX service supervisor: a POSIX sh loop that holds the service lock and restarts the process that syncs
 * (`kvvm service`) when it crashes. A shell, not a second Node: the idle memory figure counts every process of
 * the service, and /bin/sh waiting on a child costs about 1 MB of RSS where an idle Node costs about 40 MB.
 * It does only what must survive the worker's death: hold the lock, restart with backoff, count crashes. The
 * status file for a crash loop is written by a short-lived `kvvm service-crashed` (the one status writer), and
 * kvvm-service.pid is written by the worker itself, so it always names the process that syncs.
 *
 * Exit codes of the worker that are NOT crashes (no restart): 0 (stopped by a signal, or superseded by a newer
 * sequence number) and EXIT_SETTINGS_INVALID (its status already says what to fix; restarting cannot help).
 *
 * The lock is on fd 9, opened without truncation, and closed for the children (`9>&-`): a hook a worker runs
 * must not inherit the lock and keep "a service" alive after the service is gone.
 *
 * Started by enable (posixService.ts), the supervisor says when it holds the lock: with
 * KVVM_SUPERVISOR_READY_FD=3 in its environment it writes one line on fd 3 (a pipe enable reads) and closes it
 * before it starts anything. Enable returns then, without waiting for the worker's Node start; a supervisor that
 * exits before (the lock held elsewhere, flock missing) closes the pipe unwritten, and enable reports that. SIGPIPE
 * is ignored around the write only: an enable that died meanwhile must not take the supervisor with it. Under
 * systemd the variable is not set and nothing is written.
 */

import { WAKE_FILE_ENV, WAKING_ENV } from '../overrides.js';

/** sysexits.h EX_CONFIG: the worker refused its settings. */
export const EXIT_SETTINGS_INVALID = 78;
/**
 * The worker rested (pollLoop.ts): it saved what the next cycle needs, wrote the wake record (overrides.ts, WAKE_FILE_ENV) and
 * exited; the supervisor sleeps for the record's delay and starts it again with WAKING_ENV=1. Just past sysexits.h's
 * range; Node itself exits with 1-14 or 128+signal.
 */
export const EXIT_RESTING = 79;
/** The wake record, next to the service lock: `<delay ms> <wake time, ISO 8601>`, one line. */
export function wakeFileFor(serviceLock: string): string {
  return serviceLock.replace(/\.lock$/, '') + '.wake';
}

/** sysexits.h EX_TEMPFAIL: the supervisor found the service lock held by another service. */
const EXIT_LOCK_HELD = 75;

/** Set (to 3) in the supervisor's environment by a starter that reads fd 3 for "the service lock is held". */
export const SUPERVISOR_READY_FD_ENV = 'KVVM_SUPERVISOR_READY_FD';

export interface RestartPolicy {
  /** First restart delay; doubled per crash inside the window, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** This many crashes inside windowS make a crash loop: status `error`, then retries every slowDelayMs. */
  crashLoopCount: number;
  windowS: number;
  slowDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseDelayMs: 1000, maxDelayMs: 60_000, crashLoopCount: 5, windowS: 600, slowDelayMs: 300_000 };

/**
 * glibc's allocator for the worker (glibc.malloc tunables; musl ignores them). By default glibc gives each thread
 * that allocates an arena of its own (up to 8 per core) and lets its trim and mmap thresholds grow with the largest
 * block freed, so what a poll cycle's threads (libuv's pool, the parser threads, TLS) freed stayed resident in
 * six arenas. One arena with fixed 64 KiB thresholds hands it back: the idle worker's anonymous memory
 * 35.5 -> 28.7 MiB (bench/, figure 4; arena_max=2 alone: -1.6 MiB).
 * The supervisor sets them only for the worker and only when the operator has set no GLIBC_TUNABLES of their
 * own; the mark tells the worker to drop both from its environment (dropWorkerTunables) so the commands and
 * helpers it starts do not inherit kvvm's allocator settings (glibc read them when the worker started).
 */
export const WORKER_GLIBC_TUNABLES = 'glibc.malloc.arena_max=1:glibc.malloc.trim_threshold=65536:glibc.malloc.mmap_threshold=65536:glibc.malloc.top_pad=0';
export const WORKER_TUNABLES_MARK = 'KVVM_WORKER_GLIBC_TUNABLES';

/** In the worker, first thing: removes the allocator settings the supervisor added, and only those, from `env` (process.env). */
export function dropWorkerTunables(env: Record<string, string | undefined>): void {
  if (env[WORKER_TUNABLES_MARK] !== '1') return;
  delete env[WORKER_TUNABLES_MARK];
  delete env['GLIBC_TUNABLES'];
}

/**
 * $1 lock file, then the policy (five numbers), then the kvvm command (node [script]); the loop appends
 * `service` to run the worker and `service-crashed <count> <reason> <retry ms>` to report a crash loop.
 */
export const RESTART_LOOP_SCRIPT = `
PATH=\${PATH:-/usr/sbin:/usr/bin:/sbin:/bin}; export PATH
lock=$1 base=$2 max=$3 loop_count=$4 window=$5 slow=$6
shift 6
exec 9>>"$lock" || exit ${EXIT_LOCK_HELD}
flock -n 9 || { echo "kvvm-supervisor: another service holds $lock" >&2; exit ${EXIT_LOCK_HELD}; }
if [ "\${${SUPERVISOR_READY_FD_ENV}:-}" = 3 ]; then
  trap '' PIPE; { echo "kvvm-supervisor $$: holding $lock" >&3; } 2>/dev/null; exec 3>&-; trap - PIPE; unset ${SUPERVISOR_READY_FD_ENV}
fi
stopping=0 child= crashes=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
echo "kvvm-supervisor $$: supervising the certificate service"
# wait returns early when a trapped signal arrives; keep waiting until the child is really gone.
reap() { rc=0; while :; do wait "$1"; rc=$?; kill -0 "$1" 2>/dev/null || return 0; done; }
pause() { secs="$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; sleep "$secs" 9>&- & child=$!; reap "$child"; child=; }
wake=\${lock%.lock}.wake waking=
while [ "$stopping" = 0 ]; do
  if [ -n "\${GLIBC_TUNABLES+set}" ]; then ${WAKE_FILE_ENV}=$wake ${WAKING_ENV}=$waking "$@" service 9>&- &
  else GLIBC_TUNABLES=${WORKER_GLIBC_TUNABLES} ${WORKER_TUNABLES_MARK}=1 ${WAKE_FILE_ENV}=$wake ${WAKING_ENV}=$waking "$@" service 9>&- &
  fi
  child=$!
  reap "$child"
  child= waking=
  [ "$stopping" = 1 ] && break
  case $rc in 0|${EXIT_SETTINGS_INVALID}) echo "kvvm-supervisor $$: service exited with $rc; not restarting"; exit 0;; esac
  # At rest: no worker until the wake time its record names (a record that does not read is a crash, below).
  if [ "$rc" = ${EXIT_RESTING} ] && read -r rest_ms rest_at 2>/dev/null <"$wake" && case $rest_ms in ''|*[!0-9]*) false;; esac; then
    waking=1; pause "$rest_ms"; continue
  fi
  if [ "$rc" -gt 128 ]; then reason="killed by signal $(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else reason="exit code $rc"; fi
  now=$(date +%s) recent= n=0
  for t in $crashes $now; do [ $((now - t)) -lt "$window" ] && { recent="$recent $t"; n=$((n + 1)); }; done
  crashes=$recent
  if [ "$n" -ge "$loop_count" ]; then
    delay=$slow
    echo "kvvm-supervisor $$: service crashed ($reason), $n crashes in $window s: crash loop; next start in $delay ms"
    "$@" service-crashed "$n" "$reason" "$delay" 9>&- </dev/null
  else
    delay=$((base << (n - 1)))
    [ "$delay" -gt "$max" ] && delay=$max
    echo "kvvm-supervisor $$: service crashed ($reason); restart $n in $delay ms"
  fi
  pause "$delay"
done
echo "kvvm-supervisor $$: stopped"
`;

/**
 * Node options for the processes the supervisor starts (the long-running worker; `service-crashed` gets them too,
 * harmlessly). A young generation of at most 1 MiB per semi-space instead of V8's 16 MiB: the worker allocates in
 * short bursts (a poll cycle every few minutes) and otherwise sits idle, and the young generation it grew during
 * its first cycle stayed resident (bench/, figure 4: the idle worker's anonymous memory 50.2 -> 37.6 MiB). A young
 * generation that small only means more, cheaper scavenges during a cycle.
 */
export const WORKER_NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * The argv after /bin/sh: `-c <script> kvvm-supervisor <lock> <policy…> <kvvm command…>`. A kvvm command of a
 * runtime and a script (`node cli.js`) gets WORKER_NODE_OPTIONS between the two.
 */
export function restartLoopArgs(lockFile: string, kvvmCommand: readonly string[], policy: RestartPolicy = DEFAULT_RESTART_POLICY): string[] {
  const numbers = [policy.baseDelayMs, policy.maxDelayMs, policy.crashLoopCount, policy.windowS, policy.slowDelayMs];
  for (const n of numbers) if (!Number.isSafeInteger(n) || n <= 0) throw new RangeError(`restart policy values must be positive integers (got ${n})`);
  const [runtime, script, ...rest] = kvvmCommand;
  const command = runtime !== undefined && script !== undefined && rest.length === 0 ? [runtime, ...WORKER_NODE_OPTIONS, script] : kvvmCommand;
  return ['-c', RESTART_LOOP_SCRIPT, 'kvvm-supervisor', lockFile, ...numbers.map(String), ...command];
}

/** Test knob (KVVM_RESTART_BASE_MS, read in overrides.ts): faster restarts; operators get the defaults. */
export function restartPolicyFor(base: number | undefined): RestartPolicy {
  if (base === undefined) return DEFAULT_RESTART_POLICY;
  return { ...DEFAULT_RESTART_POLICY, baseDelayMs: base, maxDelayMs: Math.max(base, base * 8), slowDelayMs: Math.max(base, base * 20) };
}
