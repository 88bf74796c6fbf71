"""``verify --cmd`` starts the next runs' connector processes while a run plays, and
stops each behind it (``harness.clauses.runs.ahead``): the runs record what serial runs
record, nothing is left running, and a connector that cannot run twice at once is
started alone."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import engine
from harness.clauses.evidence import RunRecord
from harness.clauses.runs import RUNS, execute_run
from harness.clauses.runs.ahead import RunsAhead
from harness.drivers import ConnectorStartError
from harness.targets import make_target
from tests.hostile_connectors import SOLITARY, running

SERVE = f"{sys.executable} -m harness serve-connector --quiet"
NAMES = ("lifecycle", "invalid-config", "preset:flaky-5xx")


def _shape(record: RunRecord) -> list[tuple[object, ...]]:
    """What a run exchanged, without the ports that differ between platforms."""
    return [
        (e.seq, e.leg, e.method, urlsplit(e.url).path, e.status, e.failure, e.virtual_start)
        for e in record.trace
    ]


def _ahead(cmd: str, names: tuple[str, ...], **options: int) -> tuple[list[RunRecord], bool]:
    specs = [RUNS[name] for name in names]
    with RunsAhead(make_target(cmd=cmd), seed=3, **options) as ahead:
        records = [ahead.execute(spec, specs[i + 1 :]) for i, spec in enumerate(specs)]
        alone = ahead.alone
    return records, alone


def test_runs_started_ahead_record_what_serial_runs_record() -> None:
    target = make_target(cmd=SERVE)
    serial = [execute_run(RUNS[name], target, seed=3) for name in NAMES]
    ahead, alone = _ahead(SERVE, NAMES)
    assert not alone
    for one, other in zip(serial, ahead, strict=True):
        assert one.aborted is other.aborted is None
        assert len(one.trace) > 10
        assert _shape(one) == _shape(other)
        assert one.partner.segment_ids() == other.partner.segment_ids()


def test_the_next_run_starts_while_one_plays_and_nothing_is_left_running(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    cmd = f"echo $$ >> {pids}; exec {SERVE}"
    specs = [RUNS[name] for name in NAMES]
    with RunsAhead(make_target(cmd=cmd), seed=0, ahead=1) as ahead:
        ahead.execute(specs[0], specs[1:])
        deadline = time.monotonic() + 20
        while len(pids.read_text().split()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = [int(pid) for pid in pids.read_text().split()]
        assert len(started) == 2  # the second run's connector, started ahead of its turn
        # run 3 is never played: leaving gives up its start too
    for pid in [int(pid) for pid in pids.read_text().split()]:
        assert not running(pid), pid


def test_a_connector_that_cannot_run_twice_at_once_is_started_alone(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {SOLITARY} {tmp_path / 'lock'}"
    records, alone = _ahead(cmd, NAMES)
    assert alone  # an ahead start failed beside the first instance: then one at a time
    assert [r.aborted for r in records] == [None, None, None]
    assert all(r.platform.driver is not None for r in records)
    serial = [execute_run(RUNS[name], make_target(cmd=SERVE), seed=3) for name in NAMES]
    assert [_shape(r) for r in records] == [_shape(r) for r in serial]


def test_a_start_that_fails_alone_fails_its_run(tmp_path: Path) -> None:
    cmd = f"{sys.executable} {SOLITARY} {tmp_path / 'lock'} --once"
    specs = [RUNS[name] for name in NAMES]
    with RunsAhead(make_target(cmd=cmd), seed=3) as ahead:
        first = ahead.execute(specs[0], specs[1:])
        with pytest.raises(ConnectorStartError, match="exited with code 4"):
            ahead.execute(specs[1], specs[2:])
    assert first.aborted is None


def test_a_verification_whose_connector_cannot_start_again_keeps_its_runs_judged(
    tmp_path: Path,
) -> None:
    cmd = f"{sys.executable} {SOLITARY} {tmp_path / 'lock'} --once"
    with pytest.raises(engine.ConnectorLostError) as caught:
        engine.verify(make_target(cmd=cmd), clauses=["CREATE-OK", "CREATE-INVALID-CONFIG"])
    assert "lost before run invalid-config: it could not be started again" in str(caught.value)
    results = {r.id: r.outcome for r in caught.value.report.results}
    assert results == {"CREATE-OK": "passed", "CREATE-INVALID-CONFIG": "failed"}
