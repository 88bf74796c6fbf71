"""A seed sweep: one whole verification per seed, serial or in parallel worker processes.

``feed-harness verify --seeds 0..49 -j 2`` runs :func:`harness.engine.verify` once per
seed and says, per clause, on which seeds it failed; a clause that fails on some seeds
only is *flaky* (connector behaviour that depends on the users, sizes and choices a seed
makes). Each worker process runs whole verifications, so a ``--cmd`` connector is started
by each worker on its own free ports, as a serial verification does; a ``--url``
connector (one process someone else started, one gateway port) cannot be shared by two
verifications at once, so a sweep of it runs serially and ``-j N`` (N > 1) with ``--url``
is refused. ``Report`` objects are plain data: they come back from the workers pickled.
The verdict and the report do not depend on ``-j``: the seeds are judged in their order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import re
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import VerifyUsageError
from harness.report import Report
from harness.targets import Target, UrlTarget

__all__ = [
    "SEEDS_FORMS",
    "SeedRun",
    "Sweep",
    "default_jobs",
    "parse_seeds",
    "sweep",
]

SEEDS_FORMS = "a range 0..49 (both ends included), a list 0,3,7, or one seed 5"
"""The accepted forms of ``--seeds``, as usage errors name them."""
MAX_SEEDS = 10_000
_RANGE = re.compile(r"\s*(\d+)\s*\.\.\s*(\d+)\s*")
_ONE = re.compile(r"\s*(\d+)\s*")


def parse_seeds(text: str) -> list[int]:
    """``--seeds`` as a list of distinct seeds, in the order given; ``VerifyUsageError``
    naming the option and the accepted forms otherwise."""
    seeds: list[int] = []
    match = _RANGE.fullmatch(text)
    if match is not None:
        first, last = int(match.group(1)), int(match.group(2))
        if last < first:
            raise VerifyUsageError(
                f"--seeds {text!r}: the range ends before it starts; use {SEEDS_FORMS}"
            )
        if last - first + 1 > MAX_SEEDS:
            raise VerifyUsageError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
        return list(range(first, last + 1))
    parts = text.split(",")
    for part in parts:
        one = _ONE.fullmatch(part)
        if one is None:
            raise VerifyUsageError(f"--seeds {text!r} is not a seed list: use {SEEDS_FORMS}")
        seed = int(one.group(1))
        if seed not in seeds:
            seeds.append(seed)
    if len(seeds) > MAX_SEEDS:
        raise VerifyUsageError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds")
    return seeds


def default_jobs() -> int:
    """``-j``'s default: the number of cores (``os.cpu_count()``), at least 1."""
    return max(1, os.cpu_count() or 1)


@dataclass
class SeedRun:
    """One seed's verification: its report (``None`` if it never ran), and ``error`` when
    the connector could not be started, was lost (the report covers what ran) or was
    interrupted; ``exit_code`` is what ``verify --seed N`` alone would have exited with."""

    seed: int
    report: Report | None
    exit_code: int
    error: str | None = None


@dataclass
class Sweep:
    """The seeds' verifications, in seed order, and the per-clause failing seeds."""

    seeds: list[int]
    jobs: int
    runs: list[SeedRun] = field(default_factory=list)

    @property
    def failing_seeds(self) -> dict[str, list[int]]:
        """Clause id -> the seeds on which it failed (only clauses that failed somewhere),
        in the clause order of the first report."""
        out: dict[str, list[int]] = {}
        for clause in self.clause_ids:
            seeds = [
                run.seed
                for run in self.runs
                if run.report is not None
                and any(r.id == clause and r.outcome == "failed" for r in run.report.results)
            ]
            if seeds:
                out[clause] = seeds
        return out

    @property
    def clause_ids(self) -> list[str]:
        ids: list[str] = []
        for run in self.runs:
            for result in run.report.results if run.report is not None else ():
                if result.id not in ids:
                    ids.append(result.id)
        return ids

    def judged_seeds(self, clause: str) -> list[int]:
        """The seeds whose report judged ``clause``."""
        return [
            run.seed
            for run in self.runs
            if run.report is not None and any(r.id == clause for r in run.report.results)
        ]

    def flaky(self, clause: str) -> bool:
        """The clause failed on some of the seeds that judged it, not all."""
        failed = self.failing_seeds.get(clause, [])
        return bool(failed) and len(failed) < len(self.judged_seeds(clause))

    @property
    def failed(self) -> bool:
        return bool(self.failing_seeds)

    @property
    def warned(self) -> bool:
        return any(run.report is not None and run.report.warned for run in self.runs)

    @property
    def exit_code(self) -> int:
        """The sweep's exit code: the worst of the seeds' (3 unreachable or lost > 1 failed
        > 0, a warned clause counting as failed under ``strict``); an interrupted seed's
        128+N wins."""
        codes = [run.exit_code for run in self.runs]
        interrupted = [c for c in codes if c >= 128]
        if interrupted:
            return interrupted[0]
        if 3 in codes:
            return 3
        return 1 if self.failed or 1 in codes else 0

    def representative(self) -> Report | None:
        """The report written to ``--json`` / ``--junit-xml`` / ``--report``: the first seed
        on which a clause failed, else the first seed that has a report."""
        reports = [run.report for run in self.runs if run.report is not None]
        for report in reports:
            if report.failed:
                return report
        return reports[0] if reports else None

    def to_json(self) -> dict[str, Any]:
        """The ``seeds`` section of ``--json`` (``docs/verdict.schema.json``)."""
        failing = self.failing_seeds
        return {
            "seeds": list(self.seeds),
            "jobs": self.jobs,
            "clauses": [
                {
                    "id": clause,
                    "failed_on": failing.get(clause, []),
                    "judged_on": self.judged_seeds(clause),
                    "flaky": self.flaky(clause),
                }
                for clause in self.clause_ids
            ],
            "runs": [
                {
                    "seed": run.seed,
                    "exit_code": run.exit_code,
                    "error": run.error,
                    "summary": dict(run.report.summary) if run.report is not None else None,
                    "failed": [r.id for r in run.report.results if r.outcome == "failed"]
                    if run.report is not None
                    else [],
                }
                for run in self.runs
            ],
        }

    def lines(self) -> list[str]:
        """The terminal's account: a line per clause that failed on some seed, then the sum."""
        failing = self.failing_seeds
        width = max((len(c) for c in failing), default=0)
        out: list[str] = []
        for clause, seeds in failing.items():
            judged = len(self.judged_seeds(clause))
            listed = ", ".join(str(s) for s in seeds)
            if self.flaky(clause):
                what = f"flaky: fails on seeds {listed} ({len(seeds)}/{judged})"
            else:
                what = f"fails on every seed ({listed}; {len(seeds)}/{judged})"
            out.append(f"{clause:<{width}}  {what}")
        for run in self.runs:
            if run.error is not None:
                out.append(f"seed {run.seed}: {run.error}")
        flaky = sum(self.flaky(c) for c in failing)
        judged = sum(run.report is not None for run in self.runs)
        if failing:
            verdict = f"{len(failing)} clause(s) failed on some seed ({flaky} flaky)"
        elif not judged:
            verdict = "no seed could be verified"
        elif judged < len(self.runs):
            verdict = f"no clause failed on the {judged} seed(s) verified"
        else:
            verdict = "every clause passed on every seed"
        out.append(
            f"seed sweep: {len(self.runs)} of {len(self.seeds)} seed(s), -j {self.jobs}: {verdict}"
        )
        return out


@dataclass(frozen=True)
class _Job:
    """What a worker needs to run one seed's verification (picklable)."""

    target: Target
    seed: int
    clauses: tuple[str, ...] | None
    scenario: str | None
    profile: str
    call_timeout: float | None
    deadline: float | None
    strict: bool
    partner: str | None = None


def _run_seed(job: _Job) -> SeedRun:
    """One seed's verification, in whatever process runs it; never raises for the
    connector (its failures are the SeedRun's)."""
    from harness.drivers import ConnectorLoadError, ConnectorStartError
    from harness.engine import ConnectorLostError, VerificationInterrupted, verify
    from harness.errors import ConnectorUnreachableError

    if _stopping:
        return SeedRun(job.seed, None, 128 + _stopping[0], "not run: the sweep was stopped")
    try:
        report = verify(
            job.target,
            clauses=list(job.clauses) if job.clauses is not None else None,
            seed=job.seed,
            scenario=job.scenario,
            profile=job.profile,
            call_timeout=job.call_timeout,
            deadline=job.deadline,
            partner=job.partner,
        )
    except ConnectorLostError as exc:
        return SeedRun(job.seed, exc.report, 3, f"the connector was lost: {exc}")
    except VerificationInterrupted as exc:
        return SeedRun(job.seed, exc.report, 128 + exc.signum, str(exc))
    except (ConnectorStartError, ConnectorLoadError, ConnectorUnreachableError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return SeedRun(job.seed, None, 3, f"the connector could not be started or reached: {first}")
    failed = report.failed or (job.strict and report.warned)
    return SeedRun(job.seed, report, 1 if failed else 0)


_WORKER_STOP_SECONDS = 20.0
"""Real seconds stopped workers get to stop their connectors before they are killed."""


def _stop_workers(
    pool: concurrent.futures.ProcessPoolExecutor,
    futures: Sequence[concurrent.futures.Future[SeedRun]],
) -> None:
    """Cancel the seeds not started and interrupt the running ones: SIGINT, so each
    worker's verification stops its connector (process group) as Ctrl-C does; a worker
    still there after ``_WORKER_STOP_SECONDS`` is killed."""
    for future in futures:
        future.cancel()
    children = multiprocessing.active_children()
    for child in children:
        if child.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child.pid, signal.SIGINT)
    pool.shutdown(wait=False, cancel_futures=True)
    for child in children:
        child.join(_WORKER_STOP_SECONDS)
        if child.is_alive():
            child.kill()


_stopping: list[int] = []
"""In a worker: the stop signal received, if any (later seeds are then not started)."""


def _worker_init() -> None:
    """A worker keeps an in-process connector's log lines off the terminal, as the
    ``verify`` command does (unless logging is configured there), and stops on SIGINT or
    SIGTERM as the command does: the verification under way stops its connector and is
    judged, and the seeds queued to this worker are not started."""
    import logging

    from harness.engine import StopSignal

    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())

    def stop(signum: int, frame: object) -> None:
        if not _stopping:
            _stopping.append(signum)
            raise StopSignal(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


def _check_request(
    clauses: Sequence[str] | None, scenario: str | None, profile: str, partner: str | None
) -> None:
    """Usage and scenario errors once, here, before any worker starts (they raise)."""
    from fake_partner import load_scenario
    from harness.clauses.registry import select_clauses
    from harness.dialects import resolve_dialect
    from harness.profiles import check_profile

    check_profile(profile)
    select_clauses(clauses)
    resolve_dialect(partner, load_scenario(scenario) if scenario is not None else None)


def sweep(
    target: Target,
    seeds: Sequence[int],
    *,
    jobs: int | None = None,
    clauses: Sequence[str] | None = None,
    scenario: str | None = None,
    profile: str = "fast",
    call_timeout: float | None = None,
    deadline: float | None = None,
    strict: bool = False,
    progress: Callable[[str], None] | None = None,
    partner: str | None = None,
) -> Sweep:
    """Verify ``target`` once per seed, ``jobs`` at a time (default: the number of cores;
    1 runs in this process), each against the partner dialect ``partner`` as ``verify``
    takes it. ``progress`` gets ``seed 3/50 done: 2 failed`` as each seed
    ends. Usage errors raise before anything runs (as ``verify`` raises them)."""
    if not seeds:
        raise VerifyUsageError(f"--seeds names no seed: use {SEEDS_FORMS}")
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise VerifyUsageError(f"-j {jobs}: give at least 1 worker")
    if isinstance(target, UrlTarget) and jobs > 1:
        raise VerifyUsageError(
            f"-j {jobs} with --url: one running connector and its gateway port cannot serve "
            "two verifications at once; use -j 1 (a --url sweep runs serially) or --cmd, "
            "which starts a connector per worker"
        )
    _check_request(clauses, scenario, profile, partner)
    say = progress if progress is not None else (lambda _text: None)
    workers = min(jobs, len(seeds))
    jobs_list = [
        _Job(
            target,
            seed,
            tuple(clauses) if clauses is not None else None,
            scenario,
            profile,
            call_timeout,
            deadline,
            strict,
            partner,
        )
        for seed in seeds
    ]
    result = Sweep(list(seeds), workers)
    done: dict[int, SeedRun] = {}

    def finished(run: SeedRun) -> None:
        done[run.seed] = run
        failed = sum(r.outcome == "failed" for r in run.report.results) if run.report else 0
        extra = f" ({run.error})" if run.error else ""
        say(f"seed {run.seed} ({len(done)}/{len(seeds)}) done: {failed} failed{extra}")

    if workers == 1:
        for job in jobs_list:
            run = _run_seed(job)
            finished(run)
            if run.exit_code >= 128:
                break  # a stop signal: the seeds left are not run
    else:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker
        with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_worker_init
        ) as pool:
            futures = [pool.submit(_run_seed, job) for job in jobs_list]
            try:
                for future in concurrent.futures.as_completed(futures):
                    finished(future.result())
            except BaseException:  # a stop signal (or a worker lost): stop the workers too
                _stop_workers(pool, futures)
                raise
    result.runs = [done[seed] for seed in seeds if seed in done]
    return result
