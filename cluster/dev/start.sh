#!/usr/bin/env bash
# Start a real 2-node Slurm cluster on this one machine, for tests and by hand.
#
#   bash cluster/dev/start.sh [STATE_DIR]      # default: $PUL_SLURM_DIR or /tmp/pul-slurm
#   source STATE_DIR/env.sh                    # export SLURM_CONF=STATE_DIR/slurm.conf
#   bash cluster/dev/stop.sh [STATE_DIR] [--wipe]
#
# Everything lives under STATE_DIR: the config (slurm.conf, slurmdbd.conf, gres.conf,
# cgroup.conf), a munge key and a munged with its own socket, a MariaDB with its own
# datadir/socket/port, slurmdbd, slurmctld and two slurmd (`slurmd -N pul-n1`, `-N pul-n2`,
# NodeAddr=127.0.0.1, one port each), each node with 2 CPUs, and 2 fake GPUs (Gres, char
# devices made by mknod). All daemons run as root in the foreground under setsid; their
# PIDs are written to STATE_DIR/pids/<name>.pid so that stop.sh stops exactly those.
# No system file is touched and no system service is started.
#
# Re-running start.sh on a STATE_DIR whose daemons all still run prints the env and exits;
# on a stopped STATE_DIR it restarts the daemons on the old state (job ids continue).
#
# Environment knobs: PUL_SLURM_DIR (state dir), PUL_SLURM_PORT_BASE (first of 5 TCP ports,
# default 17817; moved up in steps of 10 while any of the 5 is taken),
# PUL_SLURM_START_TIMEOUT (seconds per wait, default 60).
set -euo pipefail

usage() { awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; }
STATE=""
for arg in "$@"; do
    case $arg in
        -h|--help) usage; exit 0 ;;
        -*) echo "start.sh: unknown option $arg" >&2; exit 2 ;;
        *) STATE=$arg ;;
    esac
done
STATE=${STATE:-${PUL_SLURM_DIR:-/tmp/pul-slurm}}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd -P)
TIMEOUT=${PUL_SLURM_START_TIMEOUT:-60}
CLUSTER=pul
NODES=(pul-n1 pul-n2)
T0=$EPOCHREALTIME

say() { printf 'start.sh [%5.1fs]: %s\n' "$(awk "BEGIN{print $EPOCHREALTIME - $T0}")" "$*"; }
die() { echo "start.sh: ERROR: $*" >&2; exit 1; }

for cmd in munged mungekey mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd \
           sinfo sacctmgr scontrol ss setsid; do
    command -v "$cmd" >/dev/null || die "$cmd not found; run cluster/dev/install.sh first"
done
[[ $(id -u) -eq 0 ]] || die "run as root (the daemons run as root; SlurmUser=root)"

# A unix socket path has at most 107 bytes.
[[ ${#STATE} -le 80 ]] || die "STATE_DIR path too long for unix sockets: $STATE"

PIDS=$STATE/pids
alive() {  # the recorded daemon runs (an exited one may linger as a zombie: not alive)
    local st
    [[ -s $PIDS/$1.pid ]] || return 1
    st=$(sed 's/.*) //' "/proc/$(cat "$PIDS/$1.pid")/stat" 2>/dev/null) || return 1
    [[ -n $st && ${st:0:1} != Z ]]
}
DAEMONS=(munged mariadbd slurmdbd slurmctld "${NODES[@]/#/slurmd-}")

# ---------------------------------------------------------------- already running?
n_alive=0
for d in "${DAEMONS[@]}"; do alive "$d" && n_alive=$((n_alive + 1)); done
if [[ $n_alive -eq ${#DAEMONS[@]} && -s $STATE/env.sh ]]; then
    say "all ${#DAEMONS[@]} daemons already running under $STATE"
    cat "$STATE/env.sh"
    exit 0
elif [[ $n_alive -gt 0 ]]; then
    die "some daemons of $STATE still run ($n_alive of ${#DAEMONS[@]}); run cluster/dev/stop.sh $STATE first"
fi

# ---------------------------------------------------------------- layout, ports
mkdir -p "$PIDS" "$STATE/log" "$STATE/run" "$STATE/munge" "$STATE/mysql" \
         "$STATE/spool/ctld" "$STATE/spool/d" "$STATE/dev" "$STATE/tmp"
chmod 700 "$STATE/munge"
for n in "${NODES[@]}"; do mkdir -p "$STATE/spool/d/$n"; done
rm -f "$PIDS"/*.pid

# Only listening sockets count: the daemons set SO_REUSEADDR, so TIME_WAIT leftovers of a
# previous run do not block the ports (and the ports stay the same from run to run).
port_free() { [[ -z $(ss -Htln "( sport = :$1 )" 2>/dev/null) ]]; }
BASE=${PUL_SLURM_PORT_BASE:-17817}
for _ in $(seq 1 50); do
    ok=1
    for off in 0 1 2 3 4; do port_free $((BASE + off)) || { ok=0; break; }; done
    [[ $ok -eq 1 ]] && break
    BASE=$((BASE + 10))
done
[[ $ok -eq 1 ]] || die "no 5 free TCP ports found from ${PUL_SLURM_PORT_BASE:-17817} upwards"
CTLD_PORT=$BASE; DBD_PORT=$((BASE + 1)); MYSQL_PORT=$((BASE + 2))
NODE_PORTS=($((BASE + 3)) $((BASE + 4)))
say "state $STATE; ports slurmctld=$CTLD_PORT slurmdbd=$DBD_PORT mariadb=$MYSQL_PORT slurmd=${NODE_PORTS[*]}"

# Fake GPUs: 2 char devices per node (1,3 is /dev/null's device number: opening works).
for n in "${NODES[@]}"; do
    for i in 0 1; do
        dev=$STATE/dev/$n-gpu$i
        [[ -c $dev ]] || { rm -f "$dev"; mknod "$dev" c 1 3; }
    done
done

# ---------------------------------------------------------------- config files
MUNGE_SOCKET=$STATE/munge/munge.socket
[[ -f $STATE/munge/munge.key ]] || mungekey --create --keyfile="$STATE/munge/munge.key" 2>/dev/null \
    || dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$STATE/munge/munge.key"

DB_PASS_FILE=$STATE/mysql/slurm.pass
[[ -s $DB_PASS_FILE ]] || (umask 077; head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DB_PASS_FILE")
DB_PASS=$(cat "$DB_PASS_FILE")

cat >"$STATE/slurm.conf" <<CONF
# Written by pul cluster/dev/start.sh; rewritten on every start.
ClusterName=$CLUSTER
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our own munged. Slurm 22.05 reads the socket from AuthInfo for receiving and for job
# credentials, but messages SENT by slurmctld, slurmd and every client command
# (sbatch, sacct, scontrol, ...) authenticate through AccountingStoragePass (it names
# the munge socket when slurmdbd is used), so both must name our socket.
# cred_expire (default 120 s) is also how long a requeued job waits before it may start
# again: 10 s keeps requeue/preemption tests fast.
AuthInfo=socket=$MUNGE_SOCKET,cred_expire=10
AccountingStoragePass=$MUNGE_SOCKET
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d/%n
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
TmpFS=$STATE/tmp
# No cgroups: processes are tracked through /proc, tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
MpiDefault=none
SwitchType=switch/none
LaunchType=launch/slurm
SchedulerType=sched/backfill
# Scan pending jobs every 2 s (defaults: 60 s main loop, 30 s backfill): a requeued job
# becomes eligible cred_expire (10 s) after the requeue and is then started within ~2 s.
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# The nodes report the CPUs/memory configured below, not what the host has.
SlurmdParameters=config_overrides
GresTypes=gpu
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStorageTRES=gres/gpu
AccountingStorageEnforce=associations
JobCompType=jobcomp/none
# Requeue and preemption: a QOS "high" preempts QOS "normal" by requeueing it; the job's
# --signal (submitit's USR2) is sent at preemption time, then GraceTime (QOS normal) later
# the SIGTERM/SIGKILL sequence.
JobRequeue=1
PreemptType=preempt/qos
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
# Fast tests: short kill wait, finished jobs leave squeue after a minute (sacct keeps them).
KillWait=5
MinJobAge=60
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
ReturnToService=2
NodeName=${NODES[0]} NodeAddr=127.0.0.1 Port=${NODE_PORTS[0]} CPUs=2 RealMemory=2048 Gres=gpu:2 State=UNKNOWN
NodeName=${NODES[1]} NodeAddr=127.0.0.1 Port=${NODE_PORTS[1]} CPUs=2 RealMemory=2048 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=${NODES[0]},${NODES[1]} Default=YES MaxTime=INFINITE State=UP
CONF

cat >"$STATE/gres.conf" <<CONF
# Fake GPUs: character devices under $STATE/dev; nothing is probed.
AutoDetect=off
NodeName=${NODES[0]} Name=gpu File=$STATE/dev/${NODES[0]}-gpu[0-1]
NodeName=${NODES[1]} Name=gpu File=$STATE/dev/${NODES[1]}-gpu[0-1]
CONF

cat >"$STATE/cgroup.conf" <<CONF
# No cgroup plugin is used (proctrack/linuxproc, task/none); nothing is constrained.
ConstrainCores=no
ConstrainDevices=no
ConstrainRAMSpace=no
ConstrainSwapSpace=no
CONF

(umask 077; cat >"$STATE/slurmdbd.conf" <<CONF
# Written by pul cluster/dev/start.sh; must be mode 600 and owned by SlurmUser (root).
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=$DB_PASS
StorageLoc=slurm_acct_db
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
DebugLevel=info
CONF
)
chmod 600 "$STATE/slurmdbd.conf"

export SLURM_CONF=$STATE/slurm.conf

cat >"$STATE/env.sh" <<ENV
# Source this to talk to the dev Slurm cluster under $STATE.
export SLURM_CONF=$STATE/slurm.conf
export PUL_SLURM_DIR=$STATE
ENV

# ---------------------------------------------------------------- helpers
launch() {  # launch NAME LOGFILE CMD...: start in the foreground under setsid, record PID
    local name=$1 log=$2; shift 2
    # cwd STATE_DIR: the daemons (and slurmstepd, which inherits it) hold no other dir
    (cd "$STATE" && exec setsid "$@" >>"$log" 2>&1 </dev/null) &
    echo $! >"$PIDS/$name.pid"
}
wait_for() {  # wait_for WHAT NAME LOG CHECK...: poll CHECK until it succeeds
    local what=$1 name=$2 log=$3; shift 3
    local deadline=$(( $(date +%s) + TIMEOUT ))
    until "$@" >/dev/null 2>&1; do
        if ! alive "$name"; then
            echo "---- tail of $log" >&2; tail -n 30 "$log" >&2 || true
            die "$name exited while waiting for $what"
        fi
        if [[ $(date +%s) -ge $deadline ]]; then
            echo "---- tail of $log" >&2; tail -n 30 "$log" >&2 || true
            die "timed out after ${TIMEOUT}s waiting for $what"
        fi
        sleep 0.2
    done
    say "$what"
}
fail_cleanup() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "start.sh: failed (rc=$rc); stopping what it started" >&2
        bash "$(dirname "${BASH_SOURCE[0]}")/stop.sh" "$STATE" >&2 || true
    fi
}
trap fail_cleanup EXIT

# ---------------------------------------------------------------- munged
launch munged "$STATE/log/munged.out" munged --foreground --force \
    --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
    --pid-file="$STATE/run/munged.pid" --log-file="$STATE/log/munged.log" \
    --seed-file="$STATE/munge/munged.seed"
wait_for "munged up ($MUNGE_SOCKET)" munged "$STATE/log/munged.log" \
    bash -c "munge -n -S '$MUNGE_SOCKET' | unmunge -S '$MUNGE_SOCKET'"

# ---------------------------------------------------------------- MariaDB
MYSQL_SOCKET=$STATE/mysql/mysqld.sock
MYSQL_DATA=$STATE/mysql/data
if [[ ! -d $MYSQL_DATA/mysql ]]; then
    rm -rf "$MYSQL_DATA"
    mariadb-install-db --no-defaults --user=root --datadir="$MYSQL_DATA" \
        --auth-root-authentication-method=socket --skip-test-db \
        >"$STATE/log/mariadb-install-db.log" 2>&1 \
        || { tail -n 30 "$STATE/log/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
    say "MariaDB datadir initialised"
fi
launch mariadbd "$STATE/log/mariadbd.out" mariadbd --no-defaults --user=root \
    --datadir="$MYSQL_DATA" --socket="$MYSQL_SOCKET" --port="$MYSQL_PORT" \
    --bind-address=127.0.0.1 --pid-file="$STATE/run/mariadbd.pid" \
    --log-error="$STATE/log/mariadbd.log" --skip-name-resolve \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M \
    --innodb-lock-wait-timeout=900 --innodb-use-native-aio=0 --max-connections=50
# shellcheck disable=SC2120  # arguments come through wait_for (sql -e 'SELECT 1')
sql() { mariadb --no-defaults --socket="$MYSQL_SOCKET" -u root "$@"; }
wait_for "MariaDB up (port $MYSQL_PORT)" mariadbd "$STATE/log/mariadbd.log" sql -e 'SELECT 1'
sql <<SQL
CREATE DATABASE IF NOT EXISTS slurm_acct_db;
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL

# ---------------------------------------------------------------- slurmdbd, accounts
launch slurmdbd "$STATE/log/slurmdbd.out" slurmdbd -D
wait_for "slurmdbd up (port $DBD_PORT)" slurmdbd "$STATE/log/slurmdbd.log" \
    sacctmgr -n -P show cluster format=cluster
# One sacctmgr session for all of it (each call costs ~0.3 s); on a restarted state dir
# the "add" lines find everything present and change nothing.
accounting_ready() {
    [[ $(sacctmgr -n -P show assoc cluster="$CLUSTER" account=pul user=root format=qos 2>/dev/null) == "high,normal" \
       && $(sacctmgr -n -P show qos high format=preempt 2>/dev/null) == normal ]]
}
accounting_ready || sacctmgr -i >"$STATE/log/sacctmgr.log" 2>&1 <<SACCTMGR || true
add cluster $CLUSTER
add account pul cluster=$CLUSTER description=pul-tests organization=pul
add user root account=pul cluster=$CLUSTER defaultaccount=pul
add qos high
modify qos high set priority=100 preempt=normal preemptmode=requeue
modify qos normal set gracetime=10
modify user root set qos=normal,high defaultqos=normal
SACCTMGR
accounting_ready || { cat "$STATE/log/sacctmgr.log" >&2; die "sacctmgr could not register cluster/account/user"; }
say "accounting: cluster $CLUSTER, account pul, user root (QOS normal, high preempts normal)"

# ---------------------------------------------------------------- slurmctld, slurmd
launch slurmctld "$STATE/log/slurmctld.out" slurmctld -D -i
wait_for "slurmctld up (port $CTLD_PORT)" slurmctld "$STATE/log/slurmctld.log" scontrol ping
for n in "${NODES[@]}"; do
    launch "slurmd-$n" "$STATE/log/slurmd-$n.out" slurmd -D -N "$n"
done
nodes_idle() {
    local states
    states=$(sinfo -h -N -p debug -o '%N %T' 2>/dev/null) || return 1
    for n in "${NODES[@]}"; do grep -qx "$n idle" <<<"$states" || return 1; done
}
for n in "${NODES[@]}"; do alive "slurmd-$n" || die "slurmd -N $n exited; see $STATE/log/slurmd-$n.log"; done
wait_for "nodes ${NODES[*]} idle" "slurmd-${NODES[1]}" "$STATE/log/slurmctld.log" nodes_idle
sacctmgr -n -P show cluster "$CLUSTER" format=cluster,controlport | grep -q "^$CLUSTER|$CTLD_PORT$" \
    || wait_for "cluster registered in slurmdbd" slurmctld "$STATE/log/slurmctld.log" \
        bash -c "sacctmgr -n -P show cluster $CLUSTER format=cluster,controlport | grep -q '^$CLUSTER|$CTLD_PORT\$'"

trap - EXIT
say "cluster $CLUSTER up: $(sinfo -h -o '%P %a %D %T %N')"
echo "# environment (also in $STATE/env.sh):"
cat "$STATE/env.sh"
