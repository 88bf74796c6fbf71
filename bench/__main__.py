"""``python -m bench``: every figure of the performance table, as a ratio to its baseline.

Each figure runs in a child process of its own (so its peak memory is its own); a figure
and its baseline are measured in the same run, interleaved, over several rounds, and
summarised by medians: the machine is shared, so absolute numbers drift and ratios much
less. ``--quick`` is a short run (smaller loads, fewer rounds). Figures, not assertions:
no test times anything.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import figures

FIGURES = (
    "request",
    "load",
    "loopback",
    "ingest",
    "verify-cmd",
    "keepalive",
    "big-bodies",
    "sweep",
    "big-verify",
)
DEFAULT = FIGURES[:-2]  # sweep and big-verify take minutes (docs/performance.md): --only them


# --- child side ---------------------------------------------------------------------------------


def _child(name: str, quick: bool, size: int | None) -> dict[str, Any]:
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "request": lambda: figures.request(quick),
        "load": lambda: figures.load(size or (10_000 if quick else 100_000)),
        "load-floor": lambda: figures.load_floor(size or (10_000 if quick else 100_000)),
        "ingest": lambda: figures.ingest(size or (100_000 if quick else 1_000_000)),
        "keepalive": lambda: figures.keepalive(quick),
        "loopback": lambda: figures.loopback(quick),
        "big-bodies": lambda: figures.big_bodies(size or (6 if quick else 12), True),
        "big-bodies-unbounded": lambda: figures.big_bodies(size or (6 if quick else 12), False),
        "big-verify": figures.big_verify,
    }
    result = runners[name]()
    result["peak_rss_mib"] = round(figures.peak_rss_mib(), 1)
    return result


# --- parent side --------------------------------------------------------------------------------


def _spawn(name: str, quick: bool, size: int | None) -> dict[str, Any]:
    """Run one figure in a child; its JSON result plus its peak RSS and wall time."""
    args = [sys.executable, "-m", "bench", "--child", name]
    if quick:
        args.append("--quick")
    if size is not None:
        args += ["--size", str(size)]
    start = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        return {"error": f"exit {process.returncode}: {err.strip()[-600:]}", "wall": wall}
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["wall"] = round(wall, 1)
    return result


def _line(figure: str, text: str, data: dict[str, Any]) -> None:
    print(f"{figure:<11} {text}", flush=True)
    print("  " + json.dumps(data), flush=True)


def _met(ok: bool) -> str:
    return "goal met" if ok else "goal NOT met"


def run_request(quick: bool) -> None:
    data = _spawn("request", quick, None)
    if "error" in data:
        _line("request", "FAILED", data)
        return
    ratio = data["ratio_vs_respx"]
    _line(
        "request",
        f"10-op upload: {ratio}x a static respx route, {data['ratio_vs_mock_transport']}x a "
        f"static MockTransport (goal <= 1.2x respx): {_met(ratio <= 1.2)}",
        data,
    )


def run_load(quick: bool, rounds: int, size: int | None) -> None:
    floors, loads = [], []
    for _ in range(rounds):
        floors.append(_spawn("load-floor", quick, size))
        loads.append(_spawn("load", quick, size))
    bad = [d for d in floors + loads if "error" in d]
    if bad:
        _line("load", "FAILED", bad[0])
        return
    floor = statistics.median(d["seconds"] for d in floors)
    seconds = statistics.median(d["seconds"] for d in loads)
    users = loads[0]["users"]
    rate = users / seconds
    peak = max(d["peak_rss_mib"] for d in loads)
    data = {
        "users": users,
        "load_seconds": round(seconds, 2),
        "floor_seconds": round(floor, 2),
        "users_per_second": round(rate),
        "peak_rss_mib": peak,
        "gc_share": statistics.median(d["gc_share"] for d in loads),
        "trace_held_mib": loads[-1].get("trace_held_mib"),
        "converged": all(d["converged"] for d in loads),
        "rounds": rounds,
    }
    ok = rate >= 20_000 and peak <= 300
    _line(
        "load",
        f"{users} users in-process: {seconds / floor:.2f}x the floor, {rate:,.0f} users/s, "
        f"peak {peak:.0f} MiB (goal >= 20,000 users/s, <= 300 MB): {_met(ok)}",
        data,
    )


def run_loopback(quick: bool) -> None:
    data = _spawn("loopback", quick, None)
    if "skipped" in data:
        _line("loopback", f"skipped: {data['skipped']}", data)
        return
    if "error" in data:
        _line("loopback", "FAILED", data)
        return
    ratio = data["ratio_vs_wrk"]
    _line(
        "loopback",
        f"Python driver over loopback: {ratio}x what wrk -c1 gets (goal >= 0.5): "
        f"{_met(ratio >= 0.5)}",
        data,
    )


def run_ingest(quick: bool, size: int | None) -> None:
    data = _spawn("ingest", quick, size)
    if "error" in data:
        _line("ingest", "FAILED", data)
        return
    rate, peak = data["partner_ops_per_second"], data["peak_rss_mib"]
    ok = rate >= 500_000 and peak <= 150
    _line(
        "ingest",
        f"served partner, 10k-op batches to {data['members']:,} members: {rate:,} ops/s = "
        f"{data['ratio_vs_baseline']}x a minimal uvicorn app parsing the same body; peak "
        f"{peak:.0f} MiB for the whole process (goal >= 500k ops/s, <= 150 MB): {_met(ok)}",
        data,
    )


def run_verify_cmd(quick: bool, rounds: int) -> None:
    clauses = ["--clauses", "CREATE-OK,UPDATE-ELIGIBLE"] if quick else []
    base = ["feed-harness", "verify", *clauses]
    command = [*base, "--cmd", "feed-harness serve-connector"]
    in_process, served = [], []
    for _ in range(rounds):
        in_process.append(figures.run_command(base))
        served.append(figures.run_command(command))
    wall = statistics.median(d["wall"] for d in served)
    cpu = statistics.median(d["cpu"] for d in served)
    baseline = statistics.median(d["wall"] for d in in_process)
    data = {
        "cmd_wall_s": round(wall, 1),
        "cmd_cpu_s": round(cpu, 1),
        "in_process_wall_s": round(baseline, 1),
        "exit_codes": sorted({d["code"] for d in in_process + served}),
        "clauses": "lifecycle subset" if quick else "all",
        "rounds": rounds,
    }
    goal = "" if quick else f" (goal <= 20 s): {_met(wall <= 20)}"
    _line(
        "verify-cmd",
        f"verify --cmd serve-connector: {wall:.1f} s wall, {cpu:.1f} s CPU = "
        f"{wall / baseline:.2f}x in-process verify{goal}",
        data,
    )


def run_sweep(quick: bool, rounds: int) -> None:
    """``verify --seeds`` serially (-j 1) and in parallel (-j <cores>), interleaved."""
    seeds = "0..1" if quick else "0..3"
    jobs = str(os.cpu_count() or 1)
    base = ["feed-harness", "verify", "--seeds", seeds, "--profile", "ci"]
    if quick:
        base += ["--clauses", "BATCH-*"]
    serial, parallel = [], []
    for _ in range(rounds):
        serial.append(figures.run_command([*base, "-j", "1"]))
        parallel.append(figures.run_command([*base, "-j", jobs]))
    one = statistics.median(d["wall"] for d in serial)
    many = statistics.median(d["wall"] for d in parallel)
    data = {
        "seeds": seeds,
        "jobs": int(jobs),
        "serial_wall_s": round(one, 1),
        "parallel_wall_s": round(many, 1),
        "exit_codes": sorted({d["code"] for d in serial + parallel}),
        "rounds": rounds,
    }
    _line(
        "sweep",
        f"verify --seeds {seeds}: -j {jobs} takes {many / one:.2f}x the wall time of -j 1 "
        f"({many:.1f} s vs {one:.1f} s)",
        data,
    )


def run_keepalive(quick: bool) -> None:
    data = _spawn("keepalive", quick, None)
    if "error" in data:
        _line("keepalive", "FAILED", data)
        return
    ms = data["two_requests_ms"]
    ok = max(ms["partner"], ms["gateway"]) < 10
    _line(
        "keepalive",
        f"two keep-alive requests: partner {ms['partner']} ms "
        f"({data['ratio_partner_vs_minimal']}x a minimal uvicorn app), gateway "
        f"{ms['gateway']} ms ({data['ratio_gateway_vs_minimal']}x) (goal well under 10 ms): "
        f"{_met(ok)}",
        data,
    )


def run_big_bodies(quick: bool, size: int | None) -> None:
    unbounded = _spawn("big-bodies-unbounded", quick, size)
    data = _spawn("big-bodies", quick, size)
    if "error" in data or "error" in unbounded:
        _line("big-bodies", "FAILED", data if "error" in data else unbounded)
        return
    peak, before = data["peak_rss_mib"], unbounded["peak_rss_mib"]
    _line(
        "big-bodies",
        f"verify-like loop, {data['calls']} answers of {data['answer_mib']} MiB: peak "
        f"{peak:.0f} MiB bounded, {before:.0f} MiB with an unbounded trace "
        f"({peak / before:.2f}x); every answer judged JSON: {data['judged_json']} "
        f"(goal < 500 MB): {_met(peak < 500 and data['judged_json'])}",
        {"bounded": data, "unbounded": unbounded},
    )


def run_big_verify(quick: bool) -> None:
    data = _spawn("big-verify", quick, None)
    if "error" in data:
        _line("big-verify", "FAILED", data)
        return
    peak = data["peak_rss_mib"]
    _line(
        "big-verify",
        f"verify (lifecycle run) against 50 MB answers: {data['seconds']} s, peak {peak:.0f} "
        f"MiB, verdicts {data['verdicts']} (goal < 500 MB with a verdict): "
        f"{_met(peak < 500 and bool(data['verdicts']))}",
        data,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run (smaller, fewer)")
    parser.add_argument("--only", action="append", choices=FIGURES, help="run these figures")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of process figures")
    parser.add_argument("--size", type=int, default=None, help="users / members of a load")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # `feed-harness` (the connector command, verify) from this interpreter's environment
    scripts = os.path.dirname(sys.executable)
    os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")
    if args.child:
        print(json.dumps(_child(args.child, args.quick, args.size)), flush=True)
        return 0
    rounds = args.rounds or (2 if args.quick else 3)
    chosen = args.only or list(DEFAULT)
    print(
        f"python -m bench{' --quick' if args.quick else ''}: {', '.join(chosen)} "
        f"(cpus: {os.cpu_count()}, {shlex.join(sys.argv[1:]) or 'defaults'})",
        flush=True,
    )
    runners: dict[str, Callable[[], None]] = {
        "request": lambda: run_request(args.quick),
        "load": lambda: run_load(args.quick, rounds, args.size),
        "loopback": lambda: run_loopback(args.quick),
        "ingest": lambda: run_ingest(args.quick, args.size),
        "verify-cmd": lambda: run_verify_cmd(args.quick, rounds),
        "keepalive": lambda: run_keepalive(args.quick),
        "big-bodies": lambda: run_big_bodies(args.quick, args.size),
        "sweep": lambda: run_sweep(args.quick, rounds),
        "big-verify": lambda: run_big_verify(args.quick),
    }
    for name in chosen:
        runners[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main())
