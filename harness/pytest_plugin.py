"""The pytest face of feed-harness (entry point ``pytest11``).

It stays out of the way of projects that use pytest without it: until one of
``--feed-connector``, ``--feed-cmd`` or ``--feed-url`` is given it only registers its
options, markers and fixtures (harness internals are imported inside hooks and fixtures).
With one, the session gains one test item per conformance clause, named by clause id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fake_partner import Partner
    from harness.gateway import Gateway
    from harness.platform import Platform
    from harness.report import ClauseResult, Report
    from harness.targets import Target

SUITE_NAME = "feed-harness-conformance"
_TARGET_OPTIONS = ("feed_connector", "feed_cmd", "feed_url")


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--feed-*`` options (they mirror ``feed-harness verify``)."""
    group = parser.getgroup("feed-harness", "audience-feed connector conformance (feed-harness)")
    group.addoption(
        "--feed-connector",
        metavar="MODULE:ATTR",
        help="verify this Python connector in-process: one test per conformance clause",
    )
    group.addoption(
        "--feed-cmd", metavar="COMMAND", help="verify the connector this command serves"
    )
    group.addoption(
        "--feed-url",
        metavar="URL",
        help="verify a running connector (with --feed-gateway-port, as `verify --url`)",
    )
    group.addoption(
        "--feed-gateway-port",
        type=int,
        metavar="N",
        help="with --feed-url: the port the connector's GATEWAY_PORT names",
    )
    group.addoption("--feed-scenario", metavar="FILE", help="partner scenario file or preset name")
    group.addoption(
        "--feed-clauses", metavar="IDS", help="comma-separated clause ids or patterns (BATCH-*)"
    )
    group.addoption("--feed-seed", type=int, default=0, metavar="N", help="seed (default 0)")
    group.addoption(
        "--feed-profile",
        choices=("fast", "ci", "thorough"),
        default="fast",
        help="how hard hypothesis-based clauses search (default fast)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers; with a ``--feed-*`` target, the conformance suite."""
    config.addinivalue_line(
        "markers",
        "feed_scenario(name_or_file): the fake partner scenario (preset name or .toml/.json "
        "file, relative to the test file) for the feed_partner / feed_platform fixtures",
    )
    config.addinivalue_line(
        "markers", "feed_clause(id): a feed-harness conformance clause (set by the plugin)"
    )
    if any(config.getoption(name) for name in _TARGET_OPTIONS):
        config.pluginmanager.register(ConformanceSession(config), "feed-harness-conformance")


class ConformanceSession:
    """Adds one item per selected clause and runs the verification once, on the first item."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.target: Target = _target(config)
        self.report: Report | None = None
        self.error: str | None = None

    def pytest_report_header(self, config: pytest.Config) -> str:
        seed, profile = config.getoption("feed_seed"), config.getoption("feed_profile")
        return f"feed-harness: verifying {self.target.label} (seed {seed}, profile {profile})"

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from fake_partner import ScenarioError
        from harness.clauses.registry import UnknownClauseError, select_clauses

        try:
            chosen = select_clauses(_split(config.getoption("feed_clauses")))
            _load_scenario(config.getoption("feed_scenario"))
        except UnknownClauseError as exc:
            raise pytest.UsageError(_as_option(str(exc))) from None
        except ScenarioError as exc:
            raise pytest.UsageError(f"--feed-scenario: {exc}") from None
        suite = ConformanceSuite.from_parent(session, name=SUITE_NAME, nodeid=SUITE_NAME)
        clause_items: list[pytest.Item] = [
            ClauseItem.from_parent(suite, name=c.id, statement=c.statement, plugin=self)
            for c in chosen
        ]
        # Announced as a collection, so "collected N items" and -k / -m counts include them.
        collected: list[pytest.Item | pytest.Collector] = list(clause_items)
        report = pytest.CollectReport(suite.nodeid, "passed", None, collected)
        session.ihook.pytest_collectreport(report=report)
        items[:0] = clause_items

    def result(self, session: pytest.Session, clause_id: str) -> ClauseResult:
        """The clause's result, verifying every collected clause on the first call."""
        if self.report is None and self.error is None:
            self._verify(session)
        if self.error is not None:
            raise ConformanceError(self.error)
        assert self.report is not None
        for result in self.report.results:
            if result.id == clause_id:
                return result
        raise ConformanceError(f"clause {clause_id} was not verified")

    def _verify(self, session: pytest.Session) -> None:
        from harness.drivers import ConnectorLoadError, ConnectorStartError
        from harness.verify import ConnectorUnreachableError, verify

        config = self.config
        ids = [item.name for item in session.items if isinstance(item, ClauseItem)]
        try:
            self.report = verify(
                self.target,
                clauses=ids,
                seed=config.getoption("feed_seed"),
                scenario=config.getoption("feed_scenario"),
                profile=config.getoption("feed_profile"),
            )
        except (ConnectorStartError, ConnectorLoadError, ConnectorUnreachableError) as exc:
            self.error = f"the connector could not be started or reached: {exc}"
        except Exception as exc:  # reported by every clause item, not retried per item
            self.error = f"the verification could not run: {type(exc).__name__}: {exc}"


class ConformanceError(Exception):
    """The verification itself could not run (every clause item reports it)."""


class ClauseFailedError(Exception):
    """A clause's verdict was ``failed``."""

    def __init__(self, result: ClauseResult) -> None:
        super().__init__(result.message)
        self.result = result


class ConformanceSuite(pytest.Collector):
    """The parent of the clause items (its items are added at collection's end)."""

    def collect(self) -> list[pytest.Item | pytest.Collector]:
        return []


class ClauseItem(pytest.Item):
    """One conformance clause: passes, fails or skips as its ``ClauseResult`` says."""

    def __init__(self, *, statement: str, plugin: ConformanceSession, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.statement = statement
        self.plugin = plugin
        self.add_marker(pytest.mark.feed_clause(self.name))

    def runtest(self) -> None:
        result = self.plugin.result(self.session, self.name)
        self.user_properties.append(("reproduce", result.reproduce))
        if result.outcome == "skipped":
            pytest.skip(result.message or "skipped")
        if result.outcome == "failed":
            raise ClauseFailedError(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: Any = None,
    ) -> str:
        error = excinfo.value
        if isinstance(error, ClauseFailedError):
            r = error.result
            run = f" (run {r.run})" if r.run else ""
            return f"{r.id}: {r.statement}\n{r.message}{run}\nreproduce: {r.reproduce}"
        if isinstance(error, ConformanceError):
            return f"{self.name}: {error}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"conformance clause {self.name}"


def _target(config: pytest.Config) -> Target:
    """The connector the ``--feed-*`` options name (default: the reference connector)."""
    from harness.verify import VerifyUsageError, make_target

    try:
        return make_target(
            config.getoption("feed_connector"),
            cmd=config.getoption("feed_cmd"),
            url=config.getoption("feed_url"),
            gateway_port=config.getoption("feed_gateway_port"),
        )
    except VerifyUsageError as exc:
        raise pytest.UsageError(_as_option(str(exc))) from None


def _split(text: str | None) -> list[str] | None:
    ids = [part.strip() for part in (text or "").split(",") if part.strip()]
    return ids or None


def _as_option(message: str) -> str:
    """Name the pytest option in a message written for the CLI."""
    for cli, option in (
        ("--clauses", "--feed-clauses"),
        ("--gateway-port", "--feed-gateway-port"),
        ("--connector", "--feed-connector"),
        ("--cmd", "--feed-cmd"),
        ("--url", "--feed-url"),
        ("--profile", "--feed-profile"),
    ):
        message = message.replace(cli, option)
    return message


def _load_scenario(source: str | Path | None) -> Any:
    from fake_partner import load_scenario

    return load_scenario(source) if source is not None else None


# --------------------------------------------------------------------------- fixtures


def _scenario_for(request: pytest.FixtureRequest) -> Any:
    """The marker's scenario (files relative to the test file) or ``--feed-scenario``."""
    marker = request.node.get_closest_marker("feed_scenario")
    if marker is None:
        return _load_scenario(request.config.getoption("feed_scenario"))
    if not marker.args or not isinstance(marker.args[0], str | Path):
        raise pytest.UsageError(
            f"{request.node.nodeid}: @pytest.mark.feed_scenario needs a preset name or a file, "
            'e.g. @pytest.mark.feed_scenario("rate-limited")'
        )
    source: str | Path = marker.args[0]
    beside = Path(request.path).parent / source
    if not Path(source).is_absolute() and beside.is_file():
        source = beside
    return _load_scenario(source)


@pytest.fixture
def feed_partner(request: pytest.FixtureRequest) -> Partner:
    """A fresh fake partner; scenario from ``@pytest.mark.feed_scenario`` or ``--feed-scenario``."""
    from fake_partner import Partner

    return Partner(_scenario_for(request))


@pytest.fixture
def feed_gateway() -> Gateway:
    """A fresh fake plugin gateway (no feed yet; add them with ``add_feed``)."""
    from harness.gateway import Gateway

    return Gateway()


@pytest.fixture
def feed_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """A started platform bound to the ``--feed-*`` connector (default: the reference one)."""
    from harness.platform import Platform

    target = _target(request.config)
    with Platform(**target.platform_kwargs(), scenario=_scenario_for(request)) as platform:
        yield platform
