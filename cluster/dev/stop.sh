#!/usr/bin/env bash
# Stop the dev Slurm cluster that cluster/dev/start.sh started under STATE_DIR.
#
#   bash cluster/dev/stop.sh [STATE_DIR] [--wipe]   # default: $PUL_SLURM_DIR or /tmp/pul-slurm
#
# 1. cancels the cluster's jobs (scancel through its own SLURM_CONF) and waits for them to
#    end, so no slurmstepd or job process outlives the daemons;
# 2. stops ONLY the daemons whose PIDs start.sh recorded in STATE_DIR/pids/ (slurmd,
#    slurmctld, slurmdbd, mariadbd, munged, in that order): SIGTERM, wait up to 15 s,
#    then SIGKILL. A recorded PID is only signalled while its command line still names
#    the daemon it was recorded for (no harm when a PID was reused);
# 3. then signals any process left in those daemons' sessions (each daemon was started
#    as a session leader by setsid, so a member of its session descends from it) or in
#    the session of a slurmstepd of THIS cluster (its environment holds
#    SLURM_CONF=STATE_DIR/slurm.conf, inherited from our slurmd): job steps whose cancel
#    did not finish in time.
# --wipe then removes STATE_DIR (the next start is a fresh cluster: job ids restart at 1).
# Exit status 0 when nothing of ours is left running.
set -uo pipefail

STATE=""
WIPE=0
for arg in "$@"; do
    case $arg in
        --wipe) WIPE=1 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        -*) echo "stop.sh: unknown option $arg" >&2; exit 2 ;;
        *) STATE=$arg ;;
    esac
done
STATE=${STATE:-${PUL_SLURM_DIR:-/tmp/pul-slurm}}
if [[ ! -d $STATE ]]; then
    echo "stop.sh: $STATE does not exist; nothing to stop"
    exit 0
fi
STATE=$(cd "$STATE" && pwd -P)
PIDS=$STATE/pids
T0=$EPOCHREALTIME
elapsed() { awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T0}"; }
export SLURM_CONF=$STATE/slurm.conf

# A daemon that exited stays a zombie until whatever adopted it reaps it: not running.
running() {
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $st && ${st:0:1} != Z ]]
}

# recorded NAME -> PID, only while that PID still runs the program NAME stands for
pid_of() {
    local name=$1 pid prog
    [[ -s $PIDS/$name.pid ]] || return 1
    pid=$(cat "$PIDS/$name.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    running "$pid" || return 1
    prog=${name%%-*}  # slurmd-pul-n1 -> slurmd
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qw -- "$prog" || return 1
    echo "$pid"
}

stepd_sids() {  # sessions of slurmstepd processes that belong to this cluster
    local p
    for p in $(pgrep -x slurmstepd 2>/dev/null); do
        tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qxF "SLURM_CONF=$SLURM_CONF" \
            && ps -o sid= -p "$p" 2>/dev/null | tr -d ' '
    done
}

# ---------------------------------------------------------------- 1. cancel jobs
if pid_of slurmctld >/dev/null && [[ -f $SLURM_CONF ]]; then
    mapfile -t jobs < <(timeout 10 squeue -h -o %i 2>/dev/null)
    if [[ ${#jobs[@]} -gt 0 ]]; then
        echo "stop.sh: cancelling jobs ${jobs[*]}"
        timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
        for _ in $(seq 1 100); do  # KillWait=5 s; give the steps up to 20 s
            [[ -z $(timeout 10 squeue -h -t R,CG,S -o %i 2>/dev/null) && -z $(stepd_sids) ]] \
                && break
            sleep 0.2
        done
        echo "stop.sh: jobs ended at +$(elapsed)s"
    fi
fi

# ---------------------------------------------------------------- 2. stop the daemons
declare -A SIDS=()
order=()
for f in "$PIDS"/slurmd-*.pid; do [[ -e $f ]] && order+=("$(basename "$f" .pid)"); done
order+=(slurmctld slurmdbd mariadbd munged)

stop_one() {
    local name=$1 pid
    pid=$(pid_of "$name") || { rm -f "$PIDS/$name.pid"; return 0; }
    SIDS[$pid]=1
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 150); do
        running "$pid" || break
        sleep 0.1
    done
    if running "$pid"; then
        echo "stop.sh: $name ($pid) ignored SIGTERM for 15 s; SIGKILL"
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
    fi
    echo "stop.sh: stopped $name ($pid) at +$(elapsed)s"
    rm -f "$PIDS/$name.pid"
}
for s in $(stepd_sids); do SIDS[$s]=1; done
for name in "${order[@]}"; do stop_one "$name"; done

# ---------------------------------------------------------------- 3. leftovers in our sessions
leftovers() {
    local sids
    sids=$(IFS='|'; echo "${!SIDS[*]}")
    [[ -n $sids ]] || return 0
    # zombies (exited, waiting for whoever adopted them to reap them) do not count
    ps -eo pid=,sid=,stat=,args= | awk -v re="^($sids)\$" '$2 ~ re && $3 !~ /^Z/ {print}'
}
for s in $(stepd_sids); do SIDS[$s]=1; done
left=$(leftovers)
if [[ -n $left ]]; then
    echo "stop.sh: processes of this cluster left (daemon or slurmstepd sessions); SIGTERM then SIGKILL:"
    echo "$left"
    awk '{print $1}' <<<"$left" | xargs -r kill -TERM 2>/dev/null
    sleep 2
    left=$(leftovers)
    [[ -n $left ]] && awk '{print $1}' <<<"$left" | xargs -r kill -KILL 2>/dev/null
    sleep 0.5
    left=$(leftovers)
fi
rm -f "$STATE/munge/munge.socket" "$STATE/munge/munge.socket.lock" "$STATE/mysql/mysqld.sock"

rc=0
if [[ -n $left ]]; then
    echo "stop.sh: still running:" >&2
    echo "$left" >&2
    rc=1
fi

if [[ $WIPE -eq 1 ]]; then
    if [[ $rc -eq 0 && -d $PIDS && -f $STATE/slurm.conf ]] \
        && grep -q 'Written by pul cluster/dev/start.sh' "$STATE/slurm.conf"; then
        rm -rf "$STATE"
        echo "stop.sh: removed $STATE"
    else
        echo "stop.sh: not wiping $STATE (not a start.sh state dir, or processes left)" >&2
        rc=1
    fi
fi
exit $rc
