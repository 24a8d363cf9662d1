#!/bin/bash
# Submit a sharded nightly audit to Slurm: an array of N audit tasks (one shard
# each) and a merge job that runs when they have all ended.
#
#   examples/slurm/submit.sh [--wait] INVENTORY SHARDS RUNS [STATE] [-- SBATCH-OPTIONS...]
#
#   RUNS    shared folder for reports: RUNS/<array job id>/shard-K.json and
#           merged.*, and RUNS/latest.json and RUNS/threetwoone.prom (always the
#           latest night's) for dashboards
#   STATE   catalog path on shared storage (default RUNS/state/catalog.sqlite3);
#           shard K keeps its own at STATE.shard-K-of-N: keep SHARDS the same
#           from night to night
#   --wait  wait for the merge job and exit with the combined exit code
#           (0 pass, 1 fail, 3 undetermined, 5 a shard missing or failed)
#
# The jobs run `threetwoone` from the PATH they are submitted with (sbatch
# exports the environment), or $THREETWOONE if set.  Prints the job ids.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

wait=()
if [ "${1:-}" = "--wait" ]; then
    wait=(--wait)
    shift
fi
if [ $# -lt 3 ]; then
    sed -n '2,19p' "$0" >&2
    exit 2
fi
inventory=$(realpath "$1") shards=$2 runs=$(realpath -m "$3")
shift 3
state="$runs/state/catalog.sqlite3"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
    state=$(realpath -m "$1")
    shift
fi
[ "${1:-}" = "--" ] && shift
case $shards in ''|*[!0-9]*|0) echo "SHARDS must be a positive number" >&2; exit 2;; esac

mkdir -p "$runs" "$(dirname "$state")"
array=$(sbatch --parsable --array="0-$((shards - 1))" "$@" \
        "$here/audit-shard.sbatch" "$inventory" "$runs" "$state")
array=${array%%;*}  # "jobid;cluster" on multi-cluster setups
echo "array job $array"
sbatch --parsable "${wait[@]}" --dependency="afterany:$array" "$@" \
    "$here/merge.sbatch" "$runs" "$array"
