# Whole-process timing without hyperfine, shared by the benchmark scripts (sourced, not run).

# time_runs WARMUP RUNS PREPARE CMD: runs PREPARE, then times CMD (both through bash, CMD's
# standard output discarded), WARMUP untimed and RUNS timed times; prints each timed run's
# wall time in nanoseconds, one a line. A failing CMD stops it with a message.
time_runs() {
    local warmup=$1 runs=$2 prepare=$3 cmd=$4 i t0 t1
    for ((i = 1 - warmup; i <= runs; i++)); do
        bash -c "$prepare"
        t0=$(date +%s%N)
        bash -c "$cmd" >/dev/null || { echo "timing: failed: $cmd" >&2; return 1; }
        t1=$(date +%s%N)
        if ((i > 0)); then echo $((t1 - t0)); fi
    done
}

# summarize NAME: reads nanosecond times, one a line; prints
# "NAME<TAB>median<TAB>min<TAB>max" in seconds.
summarize() {
    sort -n | awk -v name="$1" '
        { t[NR] = $1 / 1e9 }
        END {
            median = (NR % 2) ? t[(NR + 1) / 2] : (t[NR / 2] + t[NR / 2 + 1]) / 2
            printf "%s\t%.6f\t%.6f\t%.6f\n", name, median, t[1], t[NR]
        }'
}
