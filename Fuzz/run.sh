#!/usr/bin/env bash
# Runs each libFuzzer target of Fuzz/ for a bounded time (`make fuzz`):
#   Fuzz/run.sh BIN_DIR WORK_DIR SECONDS TARGET...
# Each target starts from a fresh copy of its seed corpus (Fuzz/Corpus/<target>) in
# WORK_DIR/corpus/<target>, so the repository's corpus never grows; what it finds goes to
# WORK_DIR/artifacts/<target>/. Prints one line per target: runs, executions per second and
# coverage (libFuzzer's final `cov:`/`ft:`). Exits non-zero if any target found a crash, a
# failed check, a leak or a hang, after printing the path of the input that caused it.
set -uo pipefail
bin_dir=$1 work_dir=$2 seconds=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
status=0
for target in "$@"; do
    corpus=$work_dir/corpus/$target artifacts=$work_dir/artifacts/$target log=$work_dir/$target.log
    rm -rf "$corpus" && mkdir -p "$corpus" "$artifacts" && cp "$here/Corpus/$target"/* "$corpus"/
    dict=()
    case $target in
        JSONFuzz|SpliceFuzz) dict=(-dict="$here/json.dict") ;;
        ConfigFuzz) dict=(-dict="$here/config.dict") ;;
    esac
    # -timeout: an input that takes longer is a hang, reported like a crash.
    "$bin_dir/$target" "$corpus" "${dict[@]}" -max_total_time="$seconds" -timeout=10 -max_len=4096 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    done_line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done_line")
    printf '%-11s %8s runs in %ss  %6s exec/s  cov: %-5s ft: %-6s corpus: %s (from %s seeds)\n' \
        "$target" "${runs:-?}" "$seconds" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$(ls "$here/Corpus/$target" | wc -l)"
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "$target FAILED (exit $rc); the end of its log ($log):"
        grep -E 'fuzz check failed|^input \(|ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|SUMMARY|Fatal error|deadly signal|timeout' "$log" | head -20
        grep -o 'Test unit written to .*' "$log" | sed 's/^Test unit written to /  crash input: /'
        echo "  replay it: $bin_dir/$target <that file>"
    fi
done
exit $status
