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

Plain python3, no dependencies. Builds nothing: `make bench` builds the C tools
(gcc -O2 -Wall -Wextra -o Benchmarks/.build-bench/X Benchmarks/X.c) and mcpd first.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=str(HERE / ".build-bench"),
                    help="directory holding loadgen, relay, echo_backend (default: %(default)s)")
    ap.add_argument("--mcpd", default=str(ROOT / ".build" / "release" / "mcpd"),
                    help="mcpd binary (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=3, help="repetitions per (system, case); medians are reported")
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


def write_config(tmp: Path, echo: Path) -> Path:
    cfg = tmp / "mcpd.yaml"
    cfg.write_text(
        "gateway:\n"
        f"  state_dir: {yaml_str(str(tmp / 'state'))}\n"
        "servers:\n"
        "  echo:\n"
        f"    command: {yaml_str(str(echo))}\n"
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


def run_one(args, bins, cfg: Path | None, system: str, depth: int, payload: int) -> dict[str, float]:
    large = payload >= 10_000
    count = args.count_p100k if large else args.count_p100
    warmup = args.warmup_p100k if large else args.warmup_p100
    cmd = [str(bins["loadgen"]), "--depth", str(depth), "--payload", str(payload), "--warmup", str(warmup)]
    if count > 0:
        cmd += ["--count", str(count)]
    else:
        cmd += ["--duration", str(args.duration)]
    if system == "direct":
        cmd += ["--", str(bins["echo_backend"])]
    elif system == "relay":
        cmd += ["--", str(bins["relay"]), "--", str(bins["echo_backend"])]
    elif system == "mcpd":
        cmd += ["--tool", args.tool, "--", str(args.mcpd), "stdio", "--config", str(cfg)]
    else:
        raise AssertionError(system)
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                             preexec_fn=(lambda: os.sched_setaffinity(0, args.cpu_set)) if args.cpu_set else None)
    except subprocess.TimeoutExpired:
        fail(f"{system} d={depth} p={payload}: timed out after {args.timeout} s\n  command: {' '.join(cmd)}")
    line = res.stdout.strip().splitlines()[-1] if res.stdout.strip() else ""
    if res.returncode != 0 or not line.startswith("calls="):
        err = res.stderr.strip()
        if len(err) > 4000:
            err = err[:2000] + "\n...\n" + err[-2000:]
        fail(f"{system} d={depth} p={payload}: loadgen exited {res.returncode}"
             f" ({'validation failed' if res.returncode == 2 else 'see stderr'})\n"
             f"  command: {' '.join(cmd)}\n  stdout: {res.stdout.strip()}\n  stderr:\n{err}")
    if args.verbose:
        print(f"  {system:6} d={depth:<2} p={payload_label(payload):>4}  {line}", flush=True)
    return parse_line(line)


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> None:
    args = parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if args.reps < 1:
        fail("--reps must be >= 1")
    cases = parse_cases(args.cases)
    try:
        args.cpu_set = {int(c) for c in args.cpus.split(",") if c.strip()}
    except ValueError:
        fail(f"bad --cpus {args.cpus!r}: expected a comma list of CPU ids")
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    for s in systems:
        if s not in ALL_SYSTEMS:
            fail(f"unknown system {s!r} (known: {', '.join(ALL_SYSTEMS)})")
    if args.skip_mcpd:
        systems = [s for s in systems if s != "mcpd"]

    bin_dir = Path(args.bin_dir).resolve()
    bins = {n: bin_dir / n for n in ("loadgen", "relay", "echo_backend")}
    missing = [str(p) for p in bins.values() if not os.access(p, os.X_OK)]
    if missing:
        fail("missing benchmark tools: " + ", ".join(missing) +
             "\n  build them with: make bench  (or: gcc -O2 -Wall -Wextra -o "
             f"{bin_dir}/X {HERE}/X.c  for X in loadgen relay echo_backend)")
    if "mcpd" in systems:
        args.mcpd = str(Path(args.mcpd).resolve())
        if not os.access(args.mcpd, os.X_OK):
            fail(f"mcpd binary not found or not executable: {args.mcpd}\n"
                 "  build it first (swift build -c release), pass --mcpd PATH, or use --skip-mcpd")

    tmp = Path(tempfile.mkdtemp(prefix="mcpd-bench-"))
    cfg = write_config(tmp, bins["echo_backend"]) if "mcpd" in systems else None

    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    print(f"mcpd stdio benchmark: {platform.node()} {platform.system()} {platform.release()}, "
          f"{os.cpu_count()} cpus"
          + (f" (pinned to {','.join(map(str, sorted(args.cpu_set)))})" if args.cpu_set else "")
          + f", loadavg {load[0]:.2f}; {args.reps} reps, interleaved; "
          + (f"{args.duration:g} s per run" if not (args.count_p100 and args.count_p100k) else "fixed counts"),
          flush=True)
    if cfg:
        print(f"mcpd: {args.mcpd} stdio --config {cfg}  (tool {args.tool})", flush=True)

    results: dict[tuple[str, int, int], list[dict[str, float]]] = {}
    try:
        for rep in range(args.reps):
            rot = rep % len(systems)
            order = systems[rot:] + systems[:rot]
            for depth, payload in cases:
                for system in order:
                    r = run_one(args, bins, cfg, system, depth, payload)
                    results.setdefault((system, depth, payload), []).append(r)
            print(f"  rep {rep + 1}/{args.reps} done", file=sys.stderr, flush=True)
    finally:
        for p in sorted(tmp.rglob("*"), reverse=True):
            try:
                p.rmdir() if p.is_dir() else p.unlink()
            except OSError:
                pass
        try:
            tmp.rmdir()
        except OSError:
            pass

    def med(system: str, depth: int, payload: int, key: str) -> float | None:
        runs = results.get((system, depth, payload))
        if not runs:
            return None
        return statistics.median(r[key] for r in runs)

    def rate(system: str, depth: int, payload: int) -> float | None:
        # calls/s; MB/s for large payloads (identical ratio at a fixed payload)
        return med(system, depth, payload, "mb_per_s" if payload >= 10_000 else "calls_per_s")

    header = ["system", "depth", "payload", "calls/s", "MB/s", "p50 us", "p99 us",
              "x direct", "x relay", "spread", "lg cpu%", "tree cpu%", "rss MB"]
    rows = []
    for depth, payload in cases:
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
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.rjust(w) if i > 0 else h.ljust(w) for i, (h, w) in enumerate(zip(header, widths))))
    print("  ".join("-" * w for w in widths))
    prev_case = None
    for r in rows:
        if prev_case is not None and (r[1], r[2]) != prev_case:
            print()
        prev_case = (r[1], r[2])
        print("  ".join(c.rjust(w) if i > 0 else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))

    if "direct" in systems:
        lg = [r["lg_cpu_pct"] for (s, _, _), runs in results.items() if s == "direct" for r in runs]
        print(f"\nloadgen CPU in direct runs: max {max(lg):.0f}% of one core "
              f"({'below 100%: the load generator is not the bottleneck' if max(lg) < 90 else 'NEAR SATURATION: direct may be loadgen-bound'})")
    print("MB/s counts request + response payload literals (2 x payload x calls/s, 1 MB = 1e6 B); "
          "tree cpu% = child process tree; medians of", args.reps, "reps")

    def rr(depth: int, payload: int) -> str:
        m, rl = rate("mcpd", depth, payload), rate("relay", depth, payload)
        return f"{m / rl:.3f}" if m is not None and rl else "na"

    rss = [r["child_hwm_kb"] for (s, _, _), runs in results.items() if s == "mcpd" for r in runs]
    rss_mb = f"{max(rss) / 1024:.1f}" if rss else "na"
    print(f"relay_ratio_d16_p100={rr(16, 100)} relay_ratio_d1_p100={rr(1, 100)} "
          f"relay_ratio_d16_p100k={rr(16, 100_000)} rss_mb={rss_mb}")


if __name__ == "__main__":
    main()
