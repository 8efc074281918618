#!/usr/bin/env python3
"""mcpd stdio benchmark: direct vs. minimal C relay vs. mcpd, in the same run.

Systems (the load generator always talks to its child over stdin/stdout pipes):
  direct  loadgen <-> echo_backend
  relay   loadgen <-> relay <-> echo_backend          (the floor of any stdio proxy)
  mcpd    loadgen <-> mcpd stdio --config X <-> echo_backend   (tool `echo__echo`)

Cases: in-flight depth {1, 16} x payload {100 B, 100 kB} (payload = the raw JSON
string literal of arguments.text, quotes included). Every (system, case) is run
--reps times, interleaved (rep -> case -> system, the system order rotating each
rep), and the table reports medians.

Columns:
  calls/s, MB/s    MB/s = 2 * payload * calls / s / 1e6 (request + response text literal)
  p50/p99 us       per-call latency, request write -> response read
  x direct, x relay  calls/s ratio to the direct / relay row of the same case
                   (MB/s ratio for the 100 kB cases: the same number at a fixed payload)
  spread           (max - min) / median of calls/s over the reps (noise indicator)
  lg cpu%          the load generator's own CPU (user+sys) / wall, measured phase
  tree cpu%        CPU of the child's whole process tree (relay or mcpd + echo_backend) / wall;
                   200% = both cores of a 2-core machine
  rss MB           peak RSS (VmHWM) of loadgen's direct child: echo_backend, relay or mcpd

The last line is machine-readable:
  relay_ratio_d16_p100=.. relay_ratio_d1_p100=.. relay_ratio_d16_p100k=.. rss_mb=..
where relay_ratio_* = mcpd calls/s (MB/s for p100k) / relay's in the same case, and
rss_mb = the largest mcpd VmHWM seen in any run, in MiB.

Further sections of the same run (see README.md), printed after the table:
  kinds       payload kinds (loadgen --kind ascii|code|cjk|json|base64: plain filler, escaped
              source code, raw multi-byte UTF-8, a JSON document carried as a string, base64)
              at 100 kB and 1 MB, both at depth 16: mcpd beside the byte relay and the
              newline-framing relay (relay --frame-lines), MB/s and the ratios, each case
              pinned (loadgen on one CPU, the child and the backend on the other) and unpinned;
              medians of --kinds-reps interleaved runs of --kinds-duration s (~2.5 min in all;
              --sections without kinds skips it, --kinds / --kinds-cases / --kinds-pinning /
              --kinds-reps / --kinds-duration shorten it). A failed run (e.g. mcpd refusing a
              call as "overloaded") is counted in the table's `failed` column, not fatal.
  scan        mcpd's JSON scanner alone (Benchmarks/ScanBench, built by `make bench`): GB/s over
              the request and the answer carrying each payload kind at 100 kB and 1 MB (median
              of --scan-reps), memchr's GB/s for a newline over the same bytes, and instructions
              per byte under callgrind (100 kB; valgrind runs the AVX2 scan, as its CPU has no
              AVX-512); skipped with a warning when --scanbench does not exist.
  scale       mcpd with 1, 10, 50, 100 echo backends running (tool of the last one), depth 1,
              100 B; round-robin over 10 backends (loadgen --tools) at depth 1 and 16, beside the
              same 10 backends with one tool at depth 16. Per row: calls/s (median of
              --scale-reps, interleaved), mcpd's own peak RSS (VmHWM of mcpd only, max over reps),
              instructions per call of mcpd under callgrind ((Ir at the long count - Ir at the
              short count) / (long - short); start-up cancels), heap allocation calls per
              forwarded request+response pair (malloc_count.so, same difference).
              Servers are `lazy: false`, so N really run. 1,000 configured lazy servers, none
              running, are measured by Benchmarks/lifecycle.py (make bench runs it next).
  allocations heap allocation calls per forwarded pair, 1 backend, the four main cases
  cold start  exec of mcpd -> answer of its first tools/list (10 backends configured, an empty
              catalog, so every backend starts; a warm catalog is lifecycle.py's; the client
              sends initialize, notifications/initialized, tools/list right after spawning),
              beside the slowest of 10 echo_backends spawned together (spawn -> initialize
              answer), medians of --coldstart-runs, interleaved.
The line before the last one is machine-readable too (scale_* / coldstart_* / allocs_*).

Plain python3, no dependencies. Builds nothing: `make bench` builds the C tools
(gcc -O2 -Wall -Wextra -std=gnu11 -o Benchmarks/.build-bench/X Benchmarks/X.c, X in loadgen relay
echo_backend coldstart; gcc -shared -fPIC -O2 -o Benchmarks/.build-bench/malloc_count.so
Benchmarks/malloc_count.c -ldl) and mcpd first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

ALL_SYSTEMS = ("direct", "relay", "mcpd")
DEFAULT_CASES = "1x100,16x100,1x100000,16x100000"
ALL_SECTIONS = ("main", "kinds", "scan", "scale", "callgrind", "allocs", "coldstart")
ALL_KINDS = ("ascii", "code", "cjk", "json", "base64")
# The payload-kinds table's systems: the byte relay, the newline-framing relay, mcpd.
KIND_SYSTEMS = ("relay", "nlrelay", "mcpd")
# Both at depth 16: 16 calls of 1 MB in flight stay under gateway.max_backend_queue (32 MiB by
# default; past it mcpd refuses calls with "backend is overloaded").
DEFAULT_KIND_CASES = "16x100000,16x1000000"


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=str(HERE / ".build-bench"),
                    help="directory holding loadgen, relay, echo_backend (default: %(default)s)")
    ap.add_argument("--mcpd", default=str(ROOT / ".build" / "release" / "mcpd"),
                    help="mcpd binary (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=11, help="repetitions per (system, case); medians are reported")
    ap.add_argument("--duration", type=float, default=1.0,
                    help="seconds per measured run (ignored for a payload class given a fixed count)")
    ap.add_argument("--count-p100", type=int, default=0,
                    help="fixed number of calls per run for payloads < 10 kB instead of --duration (e.g. 20000)")
    ap.add_argument("--count-p100k", type=int, default=0,
                    help="fixed number of calls per run for payloads >= 10 kB instead of --duration (e.g. 2000)")
    ap.add_argument("--warmup-p100", type=int, default=2000, help="warm-up calls before each small-payload run")
    ap.add_argument("--warmup-p100k", type=int, default=200, help="warm-up calls before each large-payload run")
    ap.add_argument("--cases", default=DEFAULT_CASES, help="comma list of DEPTHxPAYLOAD (default: %(default)s)")
    ap.add_argument("--systems", default=",".join(ALL_SYSTEMS), help="comma list of systems (default: %(default)s)")
    ap.add_argument("--skip-mcpd", action="store_true", help="run only direct and relay (no mcpd binary needed)")
    ap.add_argument("--tool", default="echo__echo", help="tool name exposed by mcpd (default: %(default)s)")
    ap.add_argument("--cpus", default="",
                    help="comma list of CPU ids to confine every process of a run to, e.g. 0 (default: no pinning). "
                         "On small VMs a cross-CPU wake-up can cost more than the work itself; pinning to one CPU "
                         "measures CPU cost per call instead of wake-up latency")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before a single run is killed")
    ap.add_argument("--sections", default=",".join(ALL_SECTIONS),
                    help="comma list of sections to run (default: %(default)s)")
    ap.add_argument("--scale-backends", default="1,10,50,100",
                    help="numbers of running echo backends for the scale rows (default: %(default)s)")
    ap.add_argument("--scale-reps", type=int, default=5,
                    help="repetitions of each scale row's calls/s run; medians are reported (default: %(default)s)")
    ap.add_argument("--rr-backends", type=int, default=10,
                    help="backends of the round-robin rows (default: %(default)s)")
    ap.add_argument("--counts", default="2000,12000",
                    help="SHORT,LONG calls for the callgrind and allocation differences (default: %(default)s); "
                         "payloads >= 10 kB use a tenth of each")
    ap.add_argument("--valgrind", default="valgrind", help="valgrind binary for the instructions/call column")
    ap.add_argument("--scanbench", default=str(Path(__file__).resolve().parent / ".build-scanbench/release/scanbench"),
                    help="the scanner microbenchmark (section scan; default: %(default)s)")
    ap.add_argument("--scan-reps", type=int, default=3, help="repetitions of the scan section (default: %(default)s)")
    ap.add_argument("--scan-seconds", type=float, default=0.3,
                    help="seconds per kind and repetition of the scan section (default: %(default)s)")
    ap.add_argument("--coldstart-runs", type=int, default=7, help="runs of each cold-start measurement (default: %(default)s)")
    ap.add_argument("--coldstart-backends", type=int, default=10,
                    help="backends configured for the cold-start row (default: %(default)s)")
    ap.add_argument("--kinds", default=",".join(ALL_KINDS),
                    help="payload kinds of the kinds table (loadgen --kind; default: %(default)s)")
    ap.add_argument("--kinds-cases", default=DEFAULT_KIND_CASES,
                    help="DEPTHxPAYLOAD cases of the kinds table (default: %(default)s)")
    ap.add_argument("--kinds-reps", type=int, default=3,
                    help="repetitions of each kinds-table run, interleaved; medians (default: %(default)s)")
    ap.add_argument("--kinds-duration", type=float, default=0.6,
                    help="seconds per kinds-table run (default: %(default)s)")
    ap.add_argument("--kinds-timeout", type=float, default=15.0,
                    help="a kinds-table run fails when no answer comes for this long (loadgen --timeout; "
                         "default: %(default)s)")
    ap.add_argument("--kinds-pinning", default="pinned,unpinned",
                    help="comma list of the rows of each kinds case: pinned (loadgen on one CPU, the child and "
                         "its children on another, with taskset), unpinned (default: %(default)s)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's loadgen line")
    return ap.parse_args()


def fail(msg: str) -> NoReturn:
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_cases(text: str) -> list[tuple[int, int]]:
    cases = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            d, p = item.lower().split("x")
            cases.append((int(d), int(p)))
        except ValueError:
            fail(f"bad case {item!r}: expected DEPTHxPAYLOAD, e.g. 16x100")
    return cases


def payload_label(p: int) -> str:
    if p >= 1000 and p % 1000 == 0:
        return f"{p // 1000}k"
    return str(p)


def yaml_str(s: str) -> str:
    # A JSON string literal is a valid YAML double-quoted scalar.
    return json.dumps(s)


# Each generated config's state directory: emptied before a measurement that subtracts two runs,
# so both start alike (no catalog), whatever ran before.
STATE_DIRS: dict[Path, Path] = {}


def fresh_state(cfg: Path) -> None:
    if cfg in STATE_DIRS:
        shutil.rmtree(STATE_DIRS[cfg], ignore_errors=True)


def write_config(tmp: Path, echo: Path) -> Path:
    cfg = tmp / "mcpd.yaml"
    STATE_DIRS[cfg] = tmp / "state"
    cfg.write_text(
        "gateway:\n"
        f"  state_dir: {yaml_str(str(tmp / 'state'))}\n"
        "servers:\n"
        "  echo:\n"
        f"    command: {yaml_str(str(echo))}\n"
        "    lazy: false\n"
    )
    return cfg


def parse_line(line: str) -> dict[str, float]:
    out = {}
    for tok in line.split():
        k, _, v = tok.partition("=")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def run_tool(args, label: str, cmd: list[str], prefix: str, cpus: set[int] | None = None,
             soft: bool = False) -> dict[str, float] | str:
    """Runs one benchmark tool (loadgen or coldstart); returns its parsed last stdout line.
    The tool runs on `cpus` (default --cpus, if given). With `soft`, a failure is returned
    (the tool's last stderr line) instead of ending the benchmark."""
    cpus = cpus or args.cpu_set
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                             preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    except subprocess.TimeoutExpired:
        if soft:
            return f"killed after {args.timeout} s"
        fail(f"{label}: timed out after {args.timeout} s\n  command: {' '.join(cmd)}")
    line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if soft and (res.returncode != 0 or not line.startswith(prefix)):
        lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("loadgen:")] or ["(no message)"]
        why = f"exit {res.returncode}: " + " / ".join(ln[:240] for ln in (lines[:1] + lines[-1:] if len(lines) > 1 else lines))
        print(f"bench: warning: {label}: {why}", file=sys.stderr, flush=True)
        return why
    if res.returncode != 0 or not line.startswith(prefix):
        err = res.stderr.strip()
        if len(err) > 4000:
            err = err[:2000] + "\n...\n" + err[-2000:]
        fail(f"{label}: {Path(cmd[0]).name} exited {res.returncode}"
             f" ({'validation failed' if res.returncode == 2 else 'see stderr'})\n"
             f"  command: {' '.join(cmd)}\n  stdout: {res.stdout.strip()}\n  stderr:\n{err}")
    if args.verbose:
        print(f"  {label:28} {line}", flush=True)
    return parse_line(line)


def loadgen_cmd(bins, depth: int, payload: int, warmup: int, count: int = 0, duration: float = 0.0,
                tools: list[str] | None = None, kind: str = "ascii") -> list[str]:
    cmd = [str(bins["loadgen"]), "--depth", str(depth), "--payload", str(payload), "--warmup", str(warmup)]
    if kind != "ascii":
        cmd += ["--kind", kind]
    cmd += ["--count", str(count)] if count > 0 else ["--duration", str(duration)]
    if tools:
        cmd += ["--tools", ",".join(tools)] if len(tools) > 1 else ["--tool", tools[0]]
    return cmd


def mcpd_cmd(args, cfg: Path) -> list[str]:
    return [str(args.mcpd), "stdio", "--config", str(cfg), "--log-level", "warning"]


def run_one(args, bins, cfg: Path | None, system: str, depth: int, payload: int) -> dict[str, float]:
    large = payload >= 10_000
    count = args.count_p100k if large else args.count_p100
    warmup = args.warmup_p100k if large else args.warmup_p100
    if system == "direct":
        cmd = loadgen_cmd(bins, depth, payload, warmup, count, args.duration) + ["--", str(bins["echo_backend"])]
    elif system == "relay":
        cmd = loadgen_cmd(bins, depth, payload, warmup, count, args.duration) + [
            "--", str(bins["relay"]), "--", str(bins["echo_backend"])]
    elif system == "mcpd":
        cmd = loadgen_cmd(bins, depth, payload, warmup, count, args.duration, [args.tool]) + ["--"] + mcpd_cmd(args, cfg)
    else:
        raise AssertionError(system)
    return run_tool(args, f"{system} d={depth} p={payload_label(payload)}", cmd, "calls=")


# ---- payload kinds ----

def kind_cmd(args, bins, cfg: Path, system: str, depth: int, payload: int, kind: str,
             child_cpu: int | None) -> list[str]:
    """loadgen's command for one kinds-table run; with child_cpu, loadgen's child (relay or
    mcpd) and, by inheritance, echo_backend run on that CPU (taskset execs the child)."""
    warmup = args.warmup_p100k if payload < 500_000 else max(2 * depth, args.warmup_p100k // 10)
    tools = [args.tool] if system == "mcpd" else None
    cmd = loadgen_cmd(bins, depth, payload, warmup, 0, args.kinds_duration, tools, kind)
    cmd += ["--timeout", f"{args.kinds_timeout:g}", "--"]
    if child_cpu is not None:
        cmd += [args.taskset, "-c", str(child_cpu)]
    if system == "relay":
        return cmd + [str(bins["relay"]), "--", str(bins["echo_backend"])]
    if system == "nlrelay":
        return cmd + [str(bins["relay"]), "--frame-lines", "--", str(bins["echo_backend"])]
    return cmd + mcpd_cmd(args, cfg)


def run_kinds(args, bins, cfg: Path) -> dict[tuple, list[dict[str, float] | str]]:
    """The payload-kinds runs: rep -> case -> kind -> pinning -> system (the system order
    rotated each rep). Returns {(depth, payload, kind, pinning, system): [loadgen results]};
    a run that failed (a wrong answer, an error answer, no answer for --kinds-timeout) is
    kept as its reason, a string, and the table goes on."""
    out: dict[tuple, list[dict[str, float] | str]] = {}
    systems = list(KIND_SYSTEMS)
    for rep in range(args.kinds_reps):
        rot = rep % len(systems)
        for depth, payload in args.kind_cases:
            for kind in args.kind_list:
                for pin in args.kind_pinning:
                    for system in systems[rot:] + systems[:rot]:
                        lg_cpus, child_cpu = ({args.pin_cpus[0]}, args.pin_cpus[1]) if pin == "pinned" else (None, None)
                        cmd = kind_cmd(args, bins, cfg, system, depth, payload, kind, child_cpu)
                        label = f"kinds {system} d={depth} p={payload_label(payload)} {kind} {pin}"
                        out.setdefault((depth, payload, kind, pin, system), []).append(
                            run_tool(args, label, cmd, "calls=", lg_cpus, soft=True))
        print(f"  kinds: rep {rep + 1}/{args.kinds_reps} done", file=sys.stderr, flush=True)
    return out


def print_kinds(args, res: dict[tuple, list[dict[str, float] | str]]) -> None:
    def ok(key: tuple) -> list[dict[str, float]]:
        return [r for r in res.get(key, []) if isinstance(r, dict)]

    def med(key: tuple, field: str) -> float | None:
        runs = ok(key)
        return statistics.median(r[field] for r in runs) if runs else None

    pins = ", ".join(f"{p} (loadgen on CPU {args.pin_cpus[0]}, relay or mcpd and echo_backend on CPU "
                     f"{args.pin_cpus[1]})" if p == "pinned" else p for p in args.kind_pinning)
    print(f"\npayload kinds: medians of {args.kinds_reps} reps of {args.kinds_duration:g} s, interleaved; "
          f"rows: {pins}. relay = C byte relay, nl relay = C newline-framing relay (relay --frame-lines: "
          "memchr for every newline, whole lines forwarded); x = mcpd MB/s / that relay's MB/s")
    header = ["payload", "depth", "kind", "cpus", "mcpd calls/s", "mcpd MB/s", "relay MB/s", "nl relay MB/s",
              "x relay", "x nl relay", "spread", "failed"]
    rows, breaks, machine, failures = [], set(), [], []
    for depth, payload in args.kind_cases:
        if rows:
            breaks.add(len(rows))
        for kind in args.kind_list:
            for pin in args.kind_pinning:
                k = (depth, payload, kind, pin)
                m, rl, nl = (med(k + (s,), "mb_per_s") for s in ("mcpd", "relay", "nlrelay"))
                cps = [r["calls_per_s"] for r in ok(k + ("mcpd",))]
                mc = statistics.median(cps) if cps else None
                failed = []
                for system in KIND_SYSTEMS:
                    for rep_no, r in enumerate(res.get(k + (system,), []), 1):
                        if isinstance(r, str):
                            failed.append(system)
                            failures.append(f"  {payload_label(payload)} d={depth} {kind} {pin}, {system}, rep {rep_no}: {r}")
                rows.append([payload_label(payload), str(depth), kind, pin, fmt(mc, ",.0f"), fmt(m, ",.1f"),
                             fmt(rl, ",.1f"), fmt(nl, ",.1f"),
                             fmt(m / rl if m and rl else None, ".2f"), fmt(m / nl if m and nl else None, ".2f"),
                             f"{100 * (max(cps) - min(cps)) / mc:.0f}%" if mc else "-",
                             ",".join(f"{failed.count(x)} {x}" for x in KIND_SYSTEMS if x in failed) or "-"])
                tag = f"p{payload_label(payload)}_d{depth}_{kind}_{pin}"
                if m and rl and nl:
                    machine += [f"kinds_x_relay_{tag}={m / rl:.3f}", f"kinds_x_nl_{tag}={m / nl:.3f}"]
    print_table(header, rows, left=4, breaks=breaks)
    print("MB/s = 2 x payload x calls/s / 1e6 (request + response text literals); spread = (max - min) / median "
          "of mcpd's calls/s over the reps; every answer checked byte for byte against its request's literal; "
          "failed = runs that ended in a wrong or error answer or no answer for --kinds-timeout (medians over the rest)"
          + (":" if failures else ""))
    for f in failures:
        print(f)
    if machine:
        print(" ".join(machine))


# ---- scale, callgrind, allocations, cold start ----

class ScaleRow:
    """mcpd with `n` echo backends e0..e<n-1> running, calling `tools` (round-robin if several)."""

    def __init__(self, label: str, n: int, tools: list[str] | None, depth: int, ref: str | None = None):
        self.label, self.n, self.tools, self.depth, self.ref = label, n, tools, depth, ref
        self.runs: list[dict[str, float]] = []
        self.instr: float | None = None
        self.allocs: float | None = None

    @property
    def key(self) -> str:
        return f"{self.label}@{self.depth}"


def write_scale_config(tmp: Path, echo: Path, n: int) -> Path:
    cfg = tmp / f"mcpd-{n}.yaml"
    STATE_DIRS[cfg] = tmp / f"state-{n}"
    lines = ["gateway:", f"  state_dir: {yaml_str(str(STATE_DIRS[cfg]))}", "servers:"]
    for i in range(n):
        lines += [f"  e{i}:", f"    command: {yaml_str(str(echo))}", "    lazy: false"]
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def scale_rows(args) -> list[ScaleRow]:
    rows = []
    for n in args.scale_ns:
        rows.append(ScaleRow(f"{n} running", n, [f"e{n - 1}__echo"], 1))
    r = args.rr_backends
    rr_tools = [f"e{i}__echo" for i in range(r)]
    rows.append(ScaleRow(f"{r} running, round-robin", r, rr_tools, 1))
    one = ScaleRow(f"{r} running", r, [f"e{r - 1}__echo"], 16)
    rows.append(one)
    rows.append(ScaleRow(f"{r} running, round-robin", r, rr_tools, 16, ref=one.key))
    base = rows[0].key
    for row in rows:
        if row.ref is None and row is not rows[0] and row.depth == 1:
            row.ref = base
    return rows


def instr_total(path: Path) -> int:
    """Ir of a callgrind output file: the totals: line (summary: if absent)."""
    totals = summary = None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("totals:"):
            totals = int(line.split()[1])
        elif line.startswith("summary:"):
            summary = int(line.split()[1])
    if totals is None and summary is None:
        fail(f"no totals:/summary: line in callgrind output {path}")
    return totals if totals is not None else summary


def counts_for(args, payload: int) -> tuple[int, int]:
    short, long_ = args.count_pair
    return (max(1, short // 10), max(2, long_ // 10)) if payload >= 10_000 else (short, long_)


SCAN_SIZES = (100_000, 1_000_000)


def run_scan(args, bins, tmp: Path) -> dict[tuple[int, str], dict[str, float]]:
    """The scanner microbenchmark: (payload, kind) -> median scan and memchr bytes/s, and
    instructions per byte (100 kB, when valgrind is there)."""
    files = {}
    for payload in SCAN_SIZES:
        for kind in args.kind_list:
            path = tmp / f"scan-{kind}-{payload}.lit"
            with open(path, "w") as out:
                subprocess.run([str(bins["loadgen"]), "--payload", str(payload), "--kind", kind, "--print-payload"],
                               stdout=out, check=True)
            files[(payload, kind)] = path
    runs: dict[tuple[int, str], list[dict]] = {}
    order = list(files)
    for rep in range(args.scan_reps):
        rot = rep % len(order)
        keys = order[rot:] + order[:rot]
        res = subprocess.run([args.scanbench, "--seconds", f"{args.scan_seconds:g}"] + [str(files[k]) for k in keys],
                             capture_output=True, text=True, timeout=args.timeout)
        if res.returncode != 0:
            fail(f"scanbench exited {res.returncode}: {res.stderr.strip()}")
        for key, line in zip(keys, res.stdout.strip().splitlines()):
            runs.setdefault(key, []).append(json.loads(line))
    out = {}
    for key, rs in runs.items():
        out[key] = {"scan": statistics.median(r["scan_bytes_per_s"] for r in rs),
                    "memchr": statistics.median(r["memchr_bytes_per_s"] for r in rs), "bytes": rs[0]["bytes"]}
    if shutil.which(args.valgrind) and shutil.which("strip"):
        stripped = tmp / "scanbench"
        shutil.copy(args.scanbench, stripped)
        subprocess.run(["strip", "--strip-debug", str(stripped)], check=True)
        for (payload, kind), path in files.items():
            if payload != SCAN_SIZES[0]:
                continue
            ir = []
            for n in (0, 10):
                cg = tmp / f"callgrind.scan.{kind}.{n}.out"
                subprocess.run([args.valgrind, "--tool=callgrind", "-q", f"--callgrind-out-file={cg}", str(stripped),
                                "--iterations", str(n), str(path)], check=True, timeout=args.timeout)
                ir.append(instr_total(cg))
            out[(payload, kind)]["instr_per_byte"] = (ir[1] - ir[0]) / (10 * out[(payload, kind)]["bytes"])
    print("  scan: done", file=sys.stderr, flush=True)
    return out


def print_scan(res: dict[tuple[int, str], dict[str, float]]) -> None:
    header = ["payload", "kind", "scan GB/s", "memchr GB/s", "instr/byte"]
    rows, breaks, extra = [], set(), []
    for payload in SCAN_SIZES:
        keys = [k for k in res if k[0] == payload]
        if not keys:
            continue
        if rows:
            breaks.add(len(rows))
        for key in keys:
            r = res[key]
            rows.append([payload_label(payload), key[1], f"{r['scan'] / 1e9:.2f}", f"{r['memchr'] / 1e9:.1f}",
                         fmt(r.get("instr_per_byte"), ".2f")])
            extra.append(f"scan_gbps_p{payload_label(payload)}_{key[1]}={r['scan'] / 1e9:.2f}")
        speeds = [res[k]["scan"] for k in keys]
        extra.append(f"scan_spread_p{payload_label(payload)}={max(speeds) / min(speeds):.2f}")
    print("\nscan: mcpd's JSONScanner alone over the tools/call request and the answer that carry each payload kind "
          "(Benchmarks/ScanBench); GB/s = bytes scanned per second (1 GB = 1e9 B), medians; memchr = a search for "
          "a newline over the same bytes; instr/byte from callgrind (100 kB)")
    print_table(header, rows, breaks=breaks)
    for payload in SCAN_SIZES:
        speeds = {k[1]: res[k]["scan"] for k in res if k[0] == payload}
        if speeds:
            fast, slow = max(speeds, key=speeds.get), min(speeds, key=speeds.get)
            print(f"{payload_label(payload)}: slowest kind {slow} {speeds[slow] / 1e9:.2f} GB/s, fastest {fast} "
                  f"{speeds[fast] / 1e9:.2f} GB/s: {speeds[fast] / speeds[slow]:.2f}x apart (target: >= 2 GB/s, within 2x)")
    print(" ".join(extra))


def callgrind_per_call(args, bins, tmp: Path, cfg: Path, label: str, tools: list[str], depth: int,
                       payload: int = 100) -> float:
    """mcpd instructions per call: (Ir(long) - Ir(short)) / (long - short); start-up and exit cancel."""
    short, long_ = counts_for(args, payload)
    ir = []
    for count in (short, long_):
        out = tmp / f"callgrind.{len(list(tmp.glob('callgrind.*')))}.out"
        # The copy without DWARF (symbols kept): valgrind 3.19 gives up on some DWARF 5 that
        # clang and swiftc emit ("debuginfo reader: ... exceeds valid image size").
        target = mcpd_cmd(args, cfg)
        target[0] = getattr(args, "mcpd_callgrind", target[0])
        cmd = loadgen_cmd(bins, depth, payload, 0, count, tools=tools) + [
            "--", args.valgrind, "--tool=callgrind", "-q", f"--callgrind-out-file={out}"] + target
        fresh_state(cfg)
        run_tool(args, f"callgrind {label} d={depth} n={count}", cmd, "calls=")
        ir.append(instr_total(out))
    return (ir[1] - ir[0]) / (long_ - short)


def allocs_per_call(args, bins, tmp: Path, cfg: Path, label: str, tools: list[str], depth: int,
                    payload: int = 100) -> float:
    """Heap allocation calls of mcpd per forwarded request+response pair (malloc_count.so)."""
    short, long_ = counts_for(args, payload)
    counts = []
    for count in (short, long_):
        stem = f"malloc.{len(list(tmp.glob('malloc.*')))}"
        cmd = loadgen_cmd(bins, depth, payload, 0, count, tools=tools) + [
            "--", "env", f"LD_PRELOAD={bins['malloc_count.so']}", f"MALLOC_COUNT_FILE={tmp / stem}.%p"
        ] + mcpd_cmd(args, cfg)
        fresh_state(cfg)
        run_tool(args, f"allocs {label} d={depth} p={payload_label(payload)} n={count}", cmd, "calls=")
        files = list(tmp.glob(stem + ".*"))
        if len(files) != 1:
            fail(f"malloc_count: expected one count file {tmp / stem}.<pid>, found {len(files)} "
                 "(did mcpd exit through exit()? did LD_PRELOAD reach it?)")
        counts.append(parse_line(files[0].read_text())["allocs"])
    return (counts[1] - counts[0]) / (long_ - short)


def print_table(header: list[str], rows: list[list[str]], left: int = 1, breaks: set[int] = frozenset()) -> None:
    """Columns < `left` are left-aligned. A row of two cells is a label and a note spanning the rest."""
    full = [r for r in rows if len(r) == len(header)]
    widths = [max(len(h), *(len(r[i]) for r in full)) if full else len(h) for i, h in enumerate(header)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for k, r in enumerate(rows):
        if k in breaks:
            print()
        print(line(r).rstrip() if len(r) == len(header) else f"{r[0].ljust(widths[0])}  {r[1]}")


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.reps < 1 or args.scale_reps < 1 or args.coldstart_runs < 1:
        fail("--reps, --scale-reps and --coldstart-runs must be >= 1")
    cases = parse_cases(args.cases)
    try:
        args.cpu_set = {int(c) for c in args.cpus.split(",") if c.strip()}
    except ValueError:
        fail(f"bad --cpus {args.cpus!r}: expected a comma list of CPU ids")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            fail(f"unknown system {s!r} (known: {', '.join(ALL_SYSTEMS)})")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    for s in sections:
        if s not in ALL_SECTIONS:
            fail(f"unknown section {s!r} (known: {', '.join(ALL_SECTIONS)})")
    if args.skip_mcpd:
        systems = [s for s in systems if s != "mcpd"]
        sections = [s for s in sections if s == "main"]
    args.kind_cases = parse_cases(args.kinds_cases)
    args.kind_list = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.kind_pinning = [p.strip() for p in args.kinds_pinning.split(",") if p.strip()]
    for k in args.kind_list:
        if k not in ALL_KINDS:
            fail(f"unknown payload kind {k!r} (known: {', '.join(ALL_KINDS)})")
    for p in args.kind_pinning:
        if p not in ("pinned", "unpinned"):
            fail(f"unknown --kinds-pinning {p!r} (pinned, unpinned)")
    if args.kinds_reps < 1 or args.kinds_duration <= 0:
        fail("--kinds-reps must be >= 1 and --kinds-duration > 0")
    if "kinds" in sections and "pinned" in args.kind_pinning:
        avail = sorted(os.sched_getaffinity(0))
        args.taskset = shutil.which("taskset")
        if len(avail) < 2 or args.taskset is None:
            print("bench: warning: the kinds table's pinned rows need 2 CPUs and taskset (util-linux); "
                  "running unpinned rows only", file=sys.stderr)
            args.kind_pinning = [p for p in args.kind_pinning if p != "pinned"]
        else:
            args.pin_cpus = avail[:2]
    if "scan" in sections and not (os.access(args.scanbench, os.X_OK) and args.kind_list):
        print(f"bench: warning: {args.scanbench} not found (make bench builds it): no scan table", file=sys.stderr)
        sections.remove("scan")
    if "kinds" in sections and not (args.kind_list and args.kind_cases and args.kind_pinning):
        sections.remove("kinds")
    try:
        args.scale_ns = [int(n) for n in args.scale_backends.split(",") if n.strip()]
        args.count_pair = tuple(int(n) for n in args.counts.split(","))
    except ValueError:
        fail("--scale-backends and --counts take comma lists of integers")
    if not args.scale_ns or min(args.scale_ns) < 1 or args.rr_backends < 1 or args.coldstart_backends < 1:
        fail("backend counts must be >= 1")
    if len(args.count_pair) != 2 or not 0 < args.count_pair[0] < args.count_pair[1]:
        fail("--counts must be SHORT,LONG with 0 < SHORT < LONG")
    if "callgrind" in sections and shutil.which(args.valgrind) is None:
        print(f"bench: warning: {args.valgrind} not found: instructions/call are reported as n/a",
              file=sys.stderr)
        sections.remove("callgrind")
    if "main" not in sections:
        systems = []

    bin_dir = Path(args.bin_dir).resolve()
    needed = ["loadgen", "relay", "echo_backend"]
    if "coldstart" in sections:
        needed.append("coldstart")
    if "allocs" in sections:
        needed.append("malloc_count.so")
    bins = {n: bin_dir / n for n in needed}
    missing = [str(p) for n, p in bins.items() if not (os.access(p, os.X_OK) or (n.endswith(".so") and p.exists()))]
    if missing:
        fail("missing benchmark tools: " + ", ".join(missing) +
             "\n  build them with: make bench-tools  (or: make -C Benchmarks tools)")
    uses_mcpd = "mcpd" in systems or any(s != "main" for s in sections)
    if uses_mcpd:
        args.mcpd = str(Path(args.mcpd).resolve())
        if not os.access(args.mcpd, os.X_OK):
            fail(f"mcpd binary not found or not executable: {args.mcpd}\n"
                 "  build it first (swift build -c release), pass --mcpd PATH, or use --skip-mcpd")

    tmp = Path(tempfile.mkdtemp(prefix="mcpd-bench-"))
    cfg = write_config(tmp, bins["echo_backend"]) if "mcpd" in systems or "kinds" in sections else None
    if uses_mcpd and "callgrind" in sections and shutil.which("strip"):
        stripped = tmp / "mcpd-callgrind"
        if subprocess.run(["strip", "--strip-debug", "-o", str(stripped), args.mcpd]).returncode == 0:
            args.mcpd_callgrind = str(stripped)

    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"mcpd stdio benchmark: {platform.node()} {platform.system()} {platform.release()}, "
          f"{os.cpu_count()} cpus"
          + (f" (pinned to {','.join(map(str, sorted(args.cpu_set)))})" if args.cpu_set else "")
          + f", loadavg {load[0]:.2f}"
          + (f"; main table: {args.reps} reps, interleaved; "
             + (f"{args.duration:g} s per run" if not (args.count_p100 and args.count_p100k) else "fixed counts")
             if systems else ""),
          flush=True)
    if uses_mcpd:
        print(f"mcpd: {args.mcpd} stdio --config <generated> --log-level warning"
              + (f"  ({' and '.join(t for t, on in (('main', bool(systems)), ('kinds', 'kinds' in sections)) if on)}"
                 f" table{'s' if systems and 'kinds' in sections else ''}: tool {args.tool})" if cfg else ""), flush=True)

    results: dict[tuple[str, int, int], list[dict[str, float]]] = {}
    kind_results: dict[tuple, list[dict[str, float] | str]] = {}
    scan_results: dict[tuple[int, str], dict[str, float]] = {}
    rows_scale = scale_rows(args)
    alloc_cases: list[tuple[int, int, float | None]] = []
    cold: dict[str, list[dict[str, float]]] = {}
    cfgs: dict[int, Path] = {}

    def scale_cfg(n: int) -> Path:
        if n not in cfgs:
            cfgs[n] = write_scale_config(tmp, bins["echo_backend"], n)
        return cfgs[n]

    try:
        for rep in range(args.reps if systems else 0):
            rot = rep % len(systems)
            order = systems[rot:] + systems[:rot]
            for depth, payload in cases:
                for system in order:
                    r = run_one(args, bins, cfg, system, depth, payload)
                    results.setdefault((system, depth, payload), []).append(r)
            print(f"  main: rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)

        if "kinds" in sections:
            kind_results = run_kinds(args, bins, cfg)
        if "scan" in sections:
            scan_results = run_scan(args, bins, tmp)

        live = [r for r in rows_scale if r.n > 0]
        if "scale" in sections:
            for rep in range(args.scale_reps):
                rot = rep % len(live)
                for row in live[rot:] + live[:rot]:
                    cmd = loadgen_cmd(bins, row.depth, 100, args.warmup_p100, args.count_p100, args.duration,
                                      row.tools) + ["--"] + mcpd_cmd(args, scale_cfg(row.n))
                    row.runs.append(run_tool(args, f"scale {row.label} d={row.depth}", cmd, "calls="))
                print(f"  scale: rep {rep + 1}/{args.scale_reps} done", file=sys.stderr, flush=True)
        if "callgrind" in sections:
            for row in live:
                row.instr = callgrind_per_call(args, bins, tmp, scale_cfg(row.n), row.label, row.tools, row.depth)
            print("  callgrind: done", file=sys.stderr, flush=True)
        if "allocs" in sections:
            for row in live:
                row.allocs = allocs_per_call(args, bins, tmp, scale_cfg(row.n), row.label, row.tools, row.depth)
            for depth, payload in cases:
                alloc_cases.append((depth, payload, allocs_per_call(args, bins, tmp, scale_cfg(1), "1 running",
                                                                    ["e0__echo"], depth, payload)))
            print("  allocs: done", file=sys.stderr, flush=True)
        if "coldstart" in sections:
            nb = args.coldstart_backends
            expect = [a for i in range(nb) for a in ("--expect", f'"e{i}__echo"')]
            kinds = {
                "mcpd": [str(bins["coldstart"]), "--method", "tools/list"] + expect + ["--"]
                        + mcpd_cmd(args, scale_cfg(nb)),
                "backends": [str(bins["coldstart"]), "--parallel", str(nb), "--", str(bins["echo_backend"])],
                "backend1": [str(bins["coldstart"]), "--", str(bins["echo_backend"])],
            }
            names = list(kinds)
            for rep in range(args.coldstart_runs):
                rot = rep % len(names)
                for k in names[rot:] + names[:rot]:
                    if k == "mcpd":
                        # A cold start: no catalog, so every backend is started and awaited.
                        shutil.rmtree(tmp / f"state-{nb}", ignore_errors=True)
                    cold.setdefault(k, []).append(run_tool(args, f"coldstart {k}", kinds[k], "n="))
            print("  coldstart: done", file=sys.stderr, flush=True)
    finally:
        if os.environ.get("BENCH_KEEP"):
            # For profiling: the callgrind outputs stay (callgrind_annotate them).
            print(f"bench: kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    def med(system: str, depth: int, payload: int, key: str) -> float | None:
        runs = results.get((system, depth, payload))
        if not runs:
            return None
        return statistics.median(r[key] for r in runs)

    def rate(system: str, depth: int, payload: int) -> float | None:
        # calls/s; MB/s for large payloads (identical ratio at a fixed payload)
        return med(system, depth, payload, "mb_per_s" if payload >= 10_000 else "calls_per_s")

    if systems:
        header = ["system", "depth", "payload", "calls/s", "MB/s", "p50 us", "p99 us",
                  "x direct", "x relay", "spread", "lg cpu%", "tree cpu%", "rss MB"]
        rows = []
        breaks = set()
        for depth, payload in cases:
            if rows:
                breaks.add(len(rows))
            for system in systems:
                runs = results[(system, depth, payload)]
                cps = [r["calls_per_s"] for r in runs]
                m = statistics.median(cps)
                mine, d, rl = rate(system, depth, payload), rate("direct", depth, payload), rate("relay", depth, payload)
                rows.append([
                    system, str(depth), payload_label(payload),
                    fmt(m, ",.0f"),
                    fmt(med(system, depth, payload, "mb_per_s"), ",.1f"),
                    fmt(med(system, depth, payload, "p50_us"), ",.0f"),
                    fmt(med(system, depth, payload, "p99_us"), ",.0f"),
                    fmt(mine / d if d else None, ".2f"),
                    fmt(mine / rl if rl else None, ".2f"),
                    f"{100 * (max(cps) - min(cps)) / m:.0f}%" if m else "-",
                    fmt(med(system, depth, payload, "lg_cpu_pct"), ".0f"),
                    fmt(med(system, depth, payload, "child_cpu_pct"), ".0f"),
                    fmt(max(r["child_hwm_kb"] for r in runs) / 1024, ".1f"),
                ])
        print()
        print_table(header, rows, breaks=breaks)

        if "direct" in systems:
            lg = [r["lg_cpu_pct"] for (s, _, _), runs in results.items() if s == "direct" for r in runs]
            print(f"\nloadgen CPU in direct runs: max {max(lg):.0f}% of one core "
                  f"({'below 100%: the load generator is not the bottleneck' if max(lg) < 90 else 'NEAR SATURATION: direct may be loadgen-bound'})")
        print("MB/s counts request + response payload literals (2 x payload x calls/s, 1 MB = 1e6 B); "
              "tree cpu% = child process tree; medians of", args.reps, "reps")

    if kind_results:
        print_kinds(args, kind_results)

    if scan_results:
        print_scan(scan_results)

    extra: list[str] = []  # the machine-readable line before the last one
    by_key = {r.key: r for r in rows_scale}

    def scale_med(row: ScaleRow, key: str) -> float | None:
        return statistics.median(r[key] for r in row.runs) if row.runs else None

    if any(s in sections for s in ("scale", "callgrind", "allocs")):
        print(f"\nscale: mcpd with N echo backends running, payload 100 B; calls/s = median of {args.scale_reps} "
              f"reps, interleaved; instr/call = mcpd under callgrind, (Ir({args.count_pair[1]} calls) - "
              f"Ir({args.count_pair[0]} calls)) / {args.count_pair[1] - args.count_pair[0]}; allocs/call = "
              "heap allocation calls of mcpd per forwarded request+response pair (same difference)")
        header = ["backends", "tool(s)", "depth", "calls/s", "x ref", "p50 us", "p99 us", "spread",
                  "instr/call", "x ref", "allocs/call", "mcpd rss MB"]
        rows = []
        breaks = set()
        for row in rows_scale:
            if rows and row.depth != rows_scale[len(rows) - 1].depth:
                breaks.add(len(rows))
            ref = by_key.get(row.ref) if row.ref else None
            cps = [r["calls_per_s"] for r in row.runs]
            m = statistics.median(cps) if cps else None
            mref = scale_med(ref, "calls_per_s") if ref else None
            tools = (row.tools[0] if len(row.tools) == 1
                     else f"{row.tools[0].split('__')[0]}..{row.tools[-1]}")  # e0..e9__echo
            rows.append([
                row.label, tools, str(row.depth),
                fmt(m, ",.0f"),
                fmt(m / mref if m and mref else None, ".2f"),
                fmt(scale_med(row, "p50_us"), ",.0f"),
                fmt(scale_med(row, "p99_us"), ",.0f"),
                f"{100 * (max(cps) - min(cps)) / m:.0f}%" if m else "-",
                fmt(row.instr, ",.0f"),
                fmt(row.instr / ref.instr if ref and row.instr and ref.instr else None, ".3f"),
                fmt(row.allocs, ".2f"),
                fmt(max(r["child_hwm_kb"] for r in row.runs) / 1024 if row.runs else None, ".1f"),
            ])
        print_table(header, rows, left=2, breaks=breaks)
        print("x ref: ratio to the first row of the same depth (1 running for depth 1; "
              f"{args.rr_backends} running, one tool, for depth 16); tool eK__echo is backend K's echo; "
              "mcpd rss = VmHWM of the mcpd process only (MiB), max over reps; targets: rss with 50 running "
              "<= 12 MB, per-call cost with 100 running within 10% of 1 running")
        for row in rows_scale:
            if row.n == 0 or row.depth != 1 or (row.tools and len(row.tools) > 1):
                continue
            if row.runs:
                extra.append(f"scale_rss_mb_n{row.n}={max(r['child_hwm_kb'] for r in row.runs) / 1024:.1f}")
        first, last = rows_scale[0], rows_scale[len(args.scale_ns) - 1]
        if first.runs and last.runs and last is not first:
            extra.append(f"scale_calls_ratio_n{last.n}="
                         f"{scale_med(last, 'calls_per_s') / scale_med(first, 'calls_per_s'):.3f}")
        if first.instr is not None:
            extra.append(f"scale_instr_per_call_n{first.n}={first.instr:.0f}")
        if first.instr and last.instr is not None and last is not first:
            extra.append(f"scale_instr_per_call_n{last.n}={last.instr:.0f}")
            extra.append(f"scale_instr_ratio_n{last.n}={last.instr / first.instr:.3f}")

    if alloc_cases:
        print("\nallocations: heap allocation calls (malloc, calloc, realloc, posix_memalign, aligned_alloc, valloc, "
              "pvalloc, memalign) of mcpd per forwarded request+response pair, 1 backend; (count(long) - count(short)) / "
              f"(long - short), {args.count_pair[0]}/{args.count_pair[1]} calls "
              f"({args.count_pair[0] // 10}/{args.count_pair[1] // 10} for 100 kB)")
        print_table(["depth", "payload", "allocs/call"],
                    [[str(d), payload_label(p), fmt(a, ".2f")] for d, p, a in alloc_cases], left=0)
        for d, p, a in alloc_cases:
            extra.append(f"allocs_per_call_d{d}_p{payload_label(p)}={a:.2f}")

    if cold:
        def cmed(k: str, key: str = "max_ms") -> float:
            return statistics.median(r[key] for r in cold[k])

        def cmin(k: str, key: str = "max_ms") -> float:
            return min(r[key] for r in cold[k])
        nb = args.coldstart_backends
        print(f"\ncold start, ms: medians (and minima) of {args.coldstart_runs} runs, interleaved. mcpd: from just "
              "before fork/exec to the read completing the tools/list answer; the client writes initialize, "
              "notifications/initialized and tools/list right after the fork. Backends: coldstart forks them "
              "back to back, writes initialize to each, times each from its own fork to its answer")
        mc, bk = cmed("mcpd"), cmed("backends")
        rows = [
            [f"mcpd, {nb} backends configured: exec -> first tools/list answer", f"{mc:.2f}", f"{cmin('mcpd'):.2f}"],
            [f"{nb} echo_backends spawned together: slowest spawn -> initialize answer",
             f"{bk:.2f}", f"{cmin('backends'):.2f}"],
            ["1 echo_backend spawned alone: spawn -> initialize answer",
             f"{cmed('backend1'):.2f}", f"{cmin('backend1'):.2f}"],
            ["added by mcpd: first tools/list - slowest backend (target <= 5 ms)",
             f"{mc - bk:.2f}", f"{cmin('mcpd') - cmin('backends'):.2f}"],
        ]
        print_table(["measurement", "median", "min"], rows)
        extra += [f"coldstart_tools_list_ms={mc:.2f}", f"coldstart_slowest_backend_ms={bk:.2f}",
                  f"coldstart_added_ms={mc - bk:.2f}"]

    if extra:
        print("\n" + " ".join(extra))

    def rr(depth: int, payload: int) -> str:
        m, rl = rate("mcpd", depth, payload), rate("relay", depth, payload)
        return f"{m / rl:.3f}" if m is not None and rl else "na"

    rss = [r["child_hwm_kb"] for (s, _, _), runs in results.items() if s == "mcpd" for r in runs]
    rss_mb = f"{max(rss) / 1024:.1f}" if rss else "na"
    print(f"relay_ratio_d16_p100={rr(16, 100)} relay_ratio_d1_p100={rr(1, 100)} "
          f"relay_ratio_d16_p100k={rr(16, 100_000)} rss_mb={rss_mb}")


if __name__ == "__main__":
    main()
