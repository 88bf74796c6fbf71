"""The conformance runs: each drives a fresh platform through a scripted feed life.

Runs are defined in ``core`` (lifecycle, invalid configuration, oversized batch),
``faults`` (one per partner preset, connection faults, authentication) and
``harness.clauses.stateful`` (random feed lives), each named once in
``harness.clauses.run_names``; this package gathers them and executes one for a target
connector. Every verification executes every run: each clause judges all of them.
"""

from __future__ import annotations

from collections.abc import Iterable

from fake_partner import Scenario
from harness.clauses.evidence import RunRecord, RunSpec
from harness.clauses.runs.core import RUN_SPECS as CORE_RUNS
from harness.clauses.runs.faults import RUN_SPECS as FAULT_RUNS
from harness.clauses.stateful import RUN_SPECS as STATEFUL_RUNS
from harness.platform import Platform
from harness.simulator import ConnectorUnavailableError, FeedStateError, SimulatorSettings
from harness.targets import Target

RUNS: dict[str, RunSpec] = {spec.name: spec for spec in (*CORE_RUNS, *FAULT_RUNS, *STATEFUL_RUNS)}


def runs_for(names: Iterable[str]) -> list[RunSpec]:
    """The run specs named, in definition order, each once."""
    wanted = set(names)
    unknown = wanted - RUNS.keys()
    if unknown:
        raise KeyError(f"unknown conformance run(s) {sorted(unknown)}; known: {sorted(RUNS)}")
    return [spec for name, spec in RUNS.items() if name in wanted]


def execute_run(
    spec: RunSpec,
    target: Target,
    *,
    seed: int,
    scenario: str | Scenario | None = None,
    partner: str | None = None,
) -> RunRecord:
    """Drive a fresh platform through ``spec`` and keep what it recorded.

    ``scenario`` (the user's ``--scenario``) replaces the run's own scenario only for
    runs that have none of their own (the preset runs keep their preset). A connector
    that stops answering ends the run early (``record.aborted``); a connector that
    cannot be started raises ``harness.drivers.ConnectorStartError``. ``partner`` is the
    dialect the fake partner speaks (default: the scenario's, else ``generic``).
    """
    record = prepare_run(spec, target, scenario=scenario, partner=partner)
    with record.platform:
        play_run(spec, record, seed)
    return record


def prepare_run(
    spec: RunSpec,
    target: Target,
    *,
    scenario: str | Scenario | None = None,
    partner: str | None = None,
) -> RunRecord:
    """The record of a run of ``spec``, its platform built but not started (options as
    :func:`execute_run`'s)."""
    platform = Platform(
        **target.platform_kwargs(),
        scenario=spec.scenario if spec.scenario is not None else scenario,
        settings=SimulatorSettings(**dict(spec.settings)),
        partner=partner,
    )
    return RunRecord(
        spec.name,
        platform,
        notes=spec.notes(),
        user_scenario=spec.scenario is None and scenario is not None,
    )


def play_run(spec: RunSpec, record: RunRecord, seed: int) -> RunRecord:
    """Play ``spec``'s script on ``record``'s started platform (stopping it is the
    caller's): a connector that stops answering ends it early (``record.aborted``)."""
    try:
        spec.script(record, seed)
    except (ConnectorUnavailableError, FeedStateError) as exc:
        record.aborted = f"{type(exc).__name__}: {exc}"
    return record
