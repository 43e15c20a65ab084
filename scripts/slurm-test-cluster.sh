#!/usr/bin/env bash
# A throw-away SLURM cluster on this one machine, for the e2e tests, CI and trying profiles/slurm
# locally: one node, or several slurmd daemons side by side. Runs as root, without systemd or
# cgroups (containers, VMs), from Debian's packages.
#
#   scripts/slurm-test-cluster.sh install [--accounting]  apt-get the packages if missing
#   scripts/slurm-test-cluster.sh start [options]         munged + slurmctld + slurmd(s) (+ MariaDB + slurmdbd)
#       --accounting     slurmdbd and MariaDB, for sacct
#       --nodes N        N nodes, node1..nodeN, a slurmd each (default 1: one node named after
#                        this host, as before)
#       --private-tmp    with --nodes: each node has a /tmp of its own, as on a real cluster
#       --share PATH     with --private-tmp: a folder under /tmp that every node sees, as on a
#                        shared file system (the project, the virtualenv); repeatable
#   scripts/slurm-test-cluster.sh status                  what runs, and the nodes' state
#   scripts/slurm-test-cluster.sh fail-node NAME          kill a node: its slurmd and its jobs' processes
#   scripts/slurm-test-cluster.sh restore-node NAME       start its slurmd again, wait until it is idle
#   scripts/slurm-test-cluster.sh stop                    stop what start started, remove its files
#
# Everything lives in $SLURM_TEST_CLUSTER_DIR (default /tmp/slurm-test-cluster; the folders
# above it must be world-executable, or munged refuses its socket). The one file
# outside it is the symlink /etc/slurm/slurm.conf: the plugin's job step runs `srun` without
# SLURM_CONF, so clients must find the config at the compiled-in path. The script never
# touches a file there that it did not create. Without --accounting, jobs are tracked with
# `squeue` (MinJobAge=3600 keeps finished jobs visible for an hour, long enough for the tests to
# read back every job of a run); with it, `sacct` works too.
#
# Several nodes: Debian's slurmd is built to run several daemons on one host (`slurmd -N nodeK`,
# each on its own port). Each node reports the whole machine, so RealMemory is capped at 7000 MB:
# jobs asking for 6 GB (training) then spread one per node. Each slurmd runs in a mount
# namespace of its own (unshare), which tells its processes from the other nodes' (fail-node)
# and, with --private-tmp, gives it its own /tmp ($DIR/nodes/NAME) with this folder and each
# --share bound back in. SlurmdTimeout=10: a dead node is marked DOWN within about 30 s, and its
# batch jobs are requeued (SLURM's default JobRequeue=1; a requeued job is held for 121 s, which
# `scontrol update JobId=ID StartTime=now` skips) or, submitted with --no-requeue, end as NODE_FAIL.
set -euo pipefail

DIR=${SLURM_TEST_CLUSTER_DIR:-/tmp/slurm-test-cluster}
ETC_CONF=/etc/slurm/slurm.conf
CLUSTER=snaketest
NODE=$(hostname -s)
GPUS=2                 # fake ones: character devices nothing reads, enough for --gpus to schedule
DB_PORT=${SLURM_TEST_DB_PORT:-3307}  # not 3306, so a MariaDB already on this machine is left alone
PACKAGES=(slurmctld slurmd slurm-client munge)
ACCOUNTING_PACKAGES=(mariadb-server slurmdbd)
NODE_MEMORY=7000       # MB, with several nodes: below twice a training job's 6000

die() { echo "slurm-test-cluster: $*" >&2; exit 1; }
log() { echo "slurm-test-cluster: $*" >&2; }

accounting=false
nodes=1
private_tmp=false
shares=()
target=""  # fail-node and restore-node: the node's name
command=${1:-}
shift || true
if [[ $command == fail-node || $command == restore-node ]]; then
    target=${1:-}
    [[ -n $target && $target != -* ]] || die "usage: $0 $command NAME"
    shift
fi
while (($#)); do
    case $1 in
        --accounting) accounting=true ;;
        --nodes) (($# > 1)) || die "--nodes takes a number"; nodes=$2; shift ;;
        --nodes=*) nodes=${1#*=} ;;
        --private-tmp) private_tmp=true ;;
        --share) (($# > 1)) || die "--share takes a folder"; shares+=("$2"); shift ;;
        --share=*) shares+=("${1#*=}") ;;
        *) die "unknown option: $1" ;;
    esac
    shift
done
[[ $nodes =~ ^[1-9][0-9]?$ ]] || die "--nodes takes a number from 1 to 99, not '$nodes'"
if $private_tmp && ((nodes == 1)); then die "--private-tmp needs --nodes 2 or more"; fi
if ((${#shares[@]})) && ! $private_tmp; then die "--share goes with --private-tmp"; fi

# Our symlink, and only ours, may be created or removed.
ours() { [[ -L $ETC_CONF && $(readlink "$ETC_CONF") == "$DIR/slurm.conf" ]]; }

# Wait up to $1 seconds for the command that follows to succeed.
wait_for() {
    local seconds=$1; shift
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    local wanted=("${PACKAGES[@]}")
    $accounting && wanted+=("${ACCOUNTING_PACKAGES[@]}")
    local missing=()
    for package in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    ((${#missing[@]} == 0)) && { log "packages present"; return; }
    # Where the packages' services start (systemd), they use the default munge socket and
    # /etc/slurm: separate from this cluster, which has its own socket and refuses a foreign config.
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}

write_config() {
    local cpus memory
    # slurmd -C prints this machine as a node line; RealMemory above what slurmd measures
    # drains the node, so ask for 95% of it.
    cpus=$(slurmd -C | sed -n 's/.* CPUs=\([0-9]*\).*/\1/p')
    memory=$(slurmd -C | sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p')
    memory=$((memory * 95 / 100))
    if ((nodes > 1 && memory > NODE_MEMORY)); then memory=$NODE_MEMORY; fi

    # One node: named after this host, files as they always were. Several: node1..nodeN on
    # ports 17001.., and %n (the node's name) in each slurmd's own files.
    local names=$NODE node_line="NodeName=$NODE NodeAddr=127.0.0.1"
    local spool=$DIR/spool/d pidfile=$DIR/run/slurmd.pid logfile=$DIR/log/slurmd.log
    if ((nodes > 1)); then
        names="node[1-$nodes]"
        node_line="NodeName=$names NodeHostname=$NODE NodeAddr=127.0.0.1 Port=[17001-$((17000 + nodes))]"
        spool=$DIR/spool/d/%n pidfile=$DIR/run/slurmd-%n.pid logfile=$DIR/log/slurmd-%n.log
    fi

    mkdir -p "$DIR"/{munge,run,log,spool/ctld,spool/d,dev}
    chmod 755 "$DIR"  # munged wants every folder above its socket traversable by all
    for i in $(seq 0 $((GPUS - 1))); do mknod "$DIR/dev/gpu$i" c 195 "$i"; done

    cat >"$DIR/slurm.conf" <<EOF
# Generated by scripts/slurm-test-cluster.sh: a throw-away cluster, $nodes node(s) on one host.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
StateSaveLocation=$DIR/spool/ctld
SlurmdSpoolDir=$spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$pidfile
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$logfile
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups here: track processes through /proc, bind nothing, gather no accounting data.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job without --mem takes the whole node.
DefMemPerCPU=500
MailProg=/bin/true
# squeue-based status checks need finished jobs to stay visible (at least 3x the plugin's
# first delay); the tests also read every job of a run back from squeue, minutes later.
MinJobAge=3600
ReturnToService=2
# A job past its time limit gets SIGKILL 5 s after SIGTERM, not 30: failures show up sooner.
KillWait=5
# A job starts when it is submitted, not at the scheduler's next pass up to 3 s later (its
# default batch_sched_delay): each job of a chain waited about 2 s for that pass.
SchedulerParameters=batch_sched_delay=0
GresTypes=gpu
$node_line CPUs=$cpus RealMemory=$memory Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=$names Default=YES MaxTime=INFINITE State=UP
EOF
    if ((nodes > 1)); then
        cat >>"$DIR/slurm.conf" <<EOF
# A node that stops answering is DOWN within ~30 s, not 300: its jobs are requeued or failed sooner.
SlurmdTimeout=10
EOF
    fi
    if $accounting; then
        cat >>"$DIR/slurm.conf" <<EOF
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
# With a munge socket other than the default, slurmctld finds it here for slurmdbd.
AccountingStoragePass=$DIR/munge/munge.socket.2
AccountingStorageTRES=gres/gpu
EOF
        # slurmdbd has no -f option: it reads slurmdbd.conf next to $SLURM_CONF. Mode 600: it
        # holds the database password.
        (umask 077 && cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=root
StorageLoc=slurm_acct_db
EOF
        )
    fi
    # A character device per GPU: File= with devices registers them (Count= alone gives zero).
    # Several nodes share the same two.
    echo "NodeName=$names Name=gpu File=$DIR/dev/gpu[0-$((GPUS - 1))]" >"$DIR/gres.conf"
    # What status, fail-node and restore-node need to know of this cluster.
    {
        echo "nodes=$nodes"
        echo "private_tmp=$private_tmp"
        local share
        for share in "${shares[@]}"; do echo "share=$share"; done
    } >"$DIR/cluster.txt"
}

read_cluster() {  # the settings start wrote down, if it did
    [[ -f $DIR/cluster.txt ]] || return 0
    nodes=$(sed -n 's/^nodes=//p' "$DIR/cluster.txt")
    private_tmp=$(sed -n 's/^private_tmp=//p' "$DIR/cluster.txt")
    mapfile -t shares < <(sed -n 's/^share=//p' "$DIR/cluster.txt")
}

node_names() {  # one a line
    if ((nodes == 1)); then echo "$NODE"; else seq -f "node%g" 1 "$nodes"; fi
}

known_node() {
    node_names | grep -qx "$1" || die "no node '$1' here; the nodes: $(node_names | tr '\n' ' ')"
}

slurmd_pidfile() {  # of node $1
    if ((nodes == 1)); then echo "$DIR/run/slurmd.pid"; else echo "$DIR/run/slurmd-$1.pid"; fi
}

# unshare --mount needs CAP_SYS_ADMIN, which an unprivileged container lacks.
own_namespaces=false
probe_unshare() {
    if unshare --mount --propagation private true 2>/dev/null; then
        own_namespaces=true
    elif $private_tmp; then
        die "--private-tmp needs 'unshare --mount' (util-linux), which failed here"
    else
        log "'unshare --mount' failed: the nodes share one mount namespace"
    fi
}

# Start the slurmd of node $1. With several nodes, each in its own mount namespace; with
# --private-tmp, there /tmp is $DIR/nodes/NAME with this folder and each share bound back at
# their own paths. --rbind, not --bind: that takes those binds along onto /tmp (a plain bind of
# the node's folder would hide this folder, and slurmd's config with it).
start_slurmd() {
    local name=$1
    if ((nodes == 1)); then
        SLURM_CONF="$DIR/slurm.conf" slurmd
    elif ! $own_namespaces; then
        SLURM_CONF="$DIR/slurm.conf" slurmd -N "$name"
    else
        local setup="" tmp=$DIR/nodes/$name path
        if $private_tmp; then
            mkdir -p "$tmp"
            chmod 1777 "$tmp"
            # Sorted: a share inside another is bound after it, not hidden by it.
            while read -r path; do
                [[ $path == /tmp/* ]] || continue  # elsewhere, every node sees it anyway
                mkdir -p "$tmp/${path#/tmp/}"
                setup+="mount --bind '$path' '$tmp/${path#/tmp/}' && "
            done < <(printf '%s\n' "$DIR" "${shares[@]}" | sort -u)
            setup+="mount --rbind '$tmp' /tmp && "
        fi
        # slurmd forks into the background; its namespace lives as long as it and its jobs do.
        SLURM_CONF="$DIR/slurm.conf" unshare --mount --propagation private \
            bash -c "${setup}exec slurmd -N '$name'"
    fi
}

nodes_idle() {  # every node idle, not just registered
    [[ $(sinfo -h -N -o "%N %T" | sort -u | grep -c " idle$") -eq $nodes ]]
}

start_munge() {
    # munged refuses a socket folder that others cannot traverse, and a key others can read.
    chmod 755 "$DIR/munge"
    dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$DIR/munge/munge.key"
    munged --socket="$DIR/munge/munge.socket.2" --key-file="$DIR/munge/munge.key" \
        --pid-file="$DIR/run/munged.pid" --log-file="$DIR/log/munged.log" \
        --seed-file="$DIR/munge/munged.seed"
    wait_for 10 munge -n -S "$DIR/munge/munge.socket.2" || die "munged did not start: see $DIR/log/munged.log"
}

start_database() {
    mkdir -p "$DIR/mysql"
    cat >"$DIR/my.cnf" <<EOF
[mysqld]
datadir=$DIR/mysql/data
socket=$DIR/mysql/mysqld.sock
pid-file=$DIR/run/mariadbd.pid
log-error=$DIR/log/mariadbd.log
bind-address=127.0.0.1
port=$DB_PORT
user=root
innodb_buffer_pool_size=64M
innodb_lock_wait_timeout=900
EOF
    mariadb-install-db --defaults-file="$DIR/my.cnf" --auth-root-authentication-method=normal \
        >"$DIR/log/mariadb-install.log" 2>&1 || die "mariadb-install-db failed: see $DIR/log/mariadb-install.log"
    # mariadbd stays in the foreground: background it and let its pid-file be the record.
    mariadbd --defaults-file="$DIR/my.cnf" >/dev/null 2>&1 &
    wait_for 30 mariadb-admin --socket="$DIR/mysql/mysqld.sock" ping \
        || die "MariaDB did not start: see $DIR/log/mariadbd.log"
    # slurmdbd connects over TCP (it has no socket setting): let root in from 127.0.0.1.
    mariadb --socket="$DIR/mysql/mysqld.sock" -e \
        "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1';"
    SLURM_CONF="$DIR/slurm.conf" slurmdbd
    wait_for 30 sacctmgr -n list cluster || die "slurmdbd did not answer: see $DIR/log/slurmdbd.log"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
}

start() {
    ours && alive "$DIR/run/slurmctld.pid" && { log "already running in $DIR"; return; }
    if [[ -e $ETC_CONF || -L $ETC_CONF ]] && ! ours; then
        if [[ -L $ETC_CONF && $(head -c 60 "$ETC_CONF" 2>/dev/null) == "# Generated by scripts/slurm-test-cluster.sh"* ]]; then
            local other
            other=$(dirname "$(readlink "$ETC_CONF")")
            die "$ETC_CONF is another test cluster's ($other): stop it first with SLURM_TEST_CLUSTER_DIR=$other $0 stop"
        fi
        die "$ETC_CONF exists and is not ours; not touching it"
    fi
    [[ -e $DIR ]] && die "$DIR exists: stop the cluster that left it first"
    command -v slurmctld >/dev/null || die "SLURM is not installed: run '$0 install' first"
    if $accounting; then command -v slurmdbd >/dev/null || die "slurmdbd is not installed: run '$0 install --accounting'"; fi
    local share
    for share in "${shares[@]}"; do
        [[ -d $share ]] || die "--share $share: no such folder"
        [[ $(realpath "$share") != /tmp ]] || die "--share /tmp would leave nothing of /tmp private"
    done
    ((${#shares[@]} == 0)) || mapfile -t shares < <(realpath "${shares[@]}")
    ((nodes == 1)) || probe_unshare

    local started=$SECONDS
    write_config
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -s "$DIR/slurm.conf" "$ETC_CONF"
    # From here on a failure (die or set -e) would leave daemons behind: stop what started.
    trap 'log "start failed, stopping what was started"; stop' EXIT
    start_munge
    $accounting && start_database
    # Daemons read gres.conf (and slurmdbd.conf) from the folder of their config file: give
    # them the real one, not the symlink in /etc/slurm.
    SLURM_CONF="$DIR/slurm.conf" slurmctld
    local name
    for name in $(node_names); do start_slurmd "$name"; done
    # The nodes must be idle, not just registered, before the first sbatch.
    wait_for 30 nodes_idle \
        || die "not every node became idle: $(sinfo -h -N -o '%N %T %E' 2>&1); see $DIR/log"
    trap - EXIT
    log "cluster $CLUSTER up in $((SECONDS - started)) s: $nodes node(s)$($private_tmp && echo ", each with its own /tmp") ($DIR)"
}

stop_daemons() {  # PID files' names: SIGTERM by PID file, then wait, SIGKILL what outlives 10 s
    local pids=() pid name
    for name in "$@"; do
        alive "$DIR/run/$name.pid" || continue
        pid=$(cat "$DIR/run/$name.pid")
        # A stale PID file could name someone else's process by now (slurmd-node1: slurmd).
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "${name%%-node*}"* ]] || { log "PID $pid is not $name; leaving it"; continue; }
        kill "$pid" && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        wait_for 10 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
    done
}

stop() {
    if [[ ! -e $DIR ]]; then
        log "nothing to stop in $DIR"
        return 0
    fi
    # Jobs first: their slurmstepd processes would otherwise outlive slurmd.
    if alive "$DIR/run/slurmctld.pid" && ours; then
        scancel --full --quiet --user=root 2>/dev/null || true
        wait_for 15 bash -c '[[ -z $(squeue -h -o %i) ]]' || log "jobs still listed after 15 s"
    fi
    # Together, as each takes a second or two; the database and munge last, as the SLURM
    # daemons use them while shutting down.
    local slurmds=() pidfile
    for pidfile in "$DIR"/run/slurmd.pid "$DIR"/run/slurmd-node*.pid; do
        [[ -e $pidfile ]] && slurmds+=("$(basename "$pidfile" .pid)")
    done
    stop_daemons "${slurmds[@]}" slurmctld slurmdbd
    stop_daemons mariadbd munged
    if ours; then rm "$ETC_CONF"; fi
    # The nodes' /tmp binds exist only in their own mount namespaces, gone with their processes:
    # nothing here is mounted, and removing $DIR removes only files.
    rm -rf "$DIR"
    log "stopped"
}

status() {
    local ok=0 daemon name
    read_cluster
    local daemons=(munged mariadbd slurmdbd slurmctld)
    for name in $(node_names); do daemons+=("$(basename "$(slurmd_pidfile "$name")" .pid)"); done
    for daemon in "${daemons[@]}"; do
        if alive "$DIR/run/$daemon.pid"; then
            echo "$daemon: running (PID $(cat "$DIR/run/$daemon.pid"))"
        elif [[ $daemon == mariadbd || $daemon == slurmdbd ]] && [[ ! -e $DIR/slurmdbd.conf ]]; then
            continue  # started without --accounting
        else
            echo "$daemon: not running"; ok=1
        fi
    done
    ours && sinfo -N -o "%N %T %c %m %G" || ok=1
    return $ok
}

# The PIDs of node $1's processes: its slurmd and every process in its mount namespace (its
# jobs' slurmstepd and what they run), or, where the nodes share one namespace, its jobs'
# slurmstepd processes found by job ID; then all their descendants.
node_processes() {
    local name=$1 pid namespace process job child parent added=1
    local -A found=()
    pid=$(cat "$(slurmd_pidfile "$name")")
    found[$pid]=1
    namespace=$(readlink "/proc/$pid/ns/mnt")
    if [[ $namespace != "$(readlink /proc/$$/ns/mnt)" ]]; then
        for process in /proc/[0-9]*; do
            [[ $(readlink "$process/ns/mnt" 2>/dev/null) == "$namespace" ]] && found[${process#/proc/}]=1
        done
    else
        for job in $(squeue -h -w "$name" -t RUNNING,COMPLETING -o %A); do
            for process in $(pgrep -x slurmstepd); do
                tr '\0' ' ' <"/proc/$process/cmdline" 2>/dev/null | grep -q "\[$job\." && found[$process]=1
            done
        done
    fi
    while ((added)); do
        added=0
        while read -r child parent; do
            if [[ -n ${found[$parent]:-} && -z ${found[$child]:-} ]]; then found[$child]=1; added=1; fi
        done < <(ps -e -o pid=,ppid=)
    done
    echo "${!found[@]}"
}

# As if the machine had died: SIGKILL to the node's slurmd, its jobs' slurmstepd and everything
# they run, so that nothing writes to shared storage after; the controller notices ~30 s later.
fail_node() {
    local name=$1 pids
    read_cluster
    known_node "$name"
    alive "$(slurmd_pidfile "$name")" || die "$name is not running"
    pids=$(node_processes "$name")
    # Stopped first, so that none forks or reacts while the others die; then what forked meanwhile.
    # shellcheck disable=SC2086
    kill -STOP $pids 2>/dev/null || true
    pids=$(printf '%s\n' $pids $(node_processes "$name") | sort -un)
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    rm -f "$(slurmd_pidfile "$name")"
    log "$name failed: $(wc -w <<<"$pids") processes killed; the controller marks it DOWN within ~30 s"
}

restore_node() {
    local name=$1
    read_cluster
    known_node "$name"
    alive "$(slurmd_pidfile "$name")" && die "$name is running"
    ((nodes == 1)) || probe_unshare
    start_slurmd "$name"
    # ReturnToService=2: a node DOWN for not answering is back once its slurmd registers.
    wait_for 60 bash -c "sinfo -h -N -n '$name' -o %T | grep -qx idle" \
        || die "$name did not become idle: $(sinfo -h -N -n "$name" -o '%T %E' 2>&1); see $DIR/log"
    log "$name restored"
}

case $command in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    fail-node) fail_node "$target" ;;
    restore-node) restore_node "$target" ;;
    *) die "usage: $0 install|start|stop|status|fail-node NAME|restore-node NAME [options]" ;;
esac
