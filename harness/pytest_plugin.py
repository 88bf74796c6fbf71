"""The pytest face of feed-harness (entry point ``pytest11``).

It stays out of the way of projects that use pytest without it: until one of
``--feed-connector``, ``--feed-cmd`` or ``--feed-url`` is given (on the command line or as
``feed_connector`` / ``feed_cmd`` / ``feed_url`` in the pytest configuration) it only
registers its options, markers and fixtures (harness internals are imported inside hooks
and fixtures). With one, the session gains one test item per conformance clause, named by
clause id (``--feed-clauses none``: no clause item, the fixtures still drive that
connector). Every ``--feed-*`` option has an ini twin (``feed_seed = 3``); the command
line wins.
"""

from __future__ import annotations

import warnings
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
_INI = {
    "feed_connector": "Python connector MODULE:ATTR to verify in-process (as --feed-connector)",
    "feed_cmd": "command that serves the connector (as --feed-cmd)",
    "feed_url": "URL of a running connector (as --feed-url)",
    "feed_gateway_port": "with feed_url: the port the connector's GATEWAY_PORT names",
    "feed_scenario": "partner scenario file or preset name (as --feed-scenario)",
    "feed_partner": "partner dialect: generic, linkedin or meta (as --feed-partner)",
    "feed_clauses": "clause ids or patterns, comma-separated; 'none': no clause item",
    "feed_seed": "seed of users and choices (default 0)",
    "feed_profile": "fast, ci or thorough (default fast)",
}
_DIALECTS = ("generic", "linkedin", "meta")
"""``fake_partner.DIALECTS`` (not imported here: the plugin stays light until used)."""
NO_CLAUSES = "none"
"""``--feed-clauses none``: select a connector for the fixtures without the clause items."""


class FeedHarnessWarning(UserWarning):
    """Something about which connector the feed-harness fixtures drive."""


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
        "--feed-partner",
        choices=_DIALECTS,
        default=None,
        help="the partner dialect the fake partner speaks (default: the scenario's, else generic)",
    )
    group.addoption(
        "--feed-clauses",
        metavar="IDS",
        help="comma-separated clause ids or patterns (BATCH-*); none: no clause item (the "
        "fixtures still drive the connector)",
    )
    group.addoption("--feed-seed", type=int, default=None, metavar="N", help="seed (default 0)")
    group.addoption(
        "--feed-profile",
        choices=("fast", "ci", "thorough"),
        default=None,
        help="how hard hypothesis-based clauses search (default fast)",
    )
    for name, text in _INI.items():
        parser.addini(name, text, default=None)


def feed_option(config: pytest.Config, name: str) -> Any:
    """A ``--feed-*`` option: the command line's value, else the ini's, else the default."""
    value = config.getoption(name)
    if value is None:
        raw = config.getini(name)
        value = raw.strip() if isinstance(raw, str) and raw.strip() else None
        if value is not None and name in ("feed_seed", "feed_gateway_port"):
            try:
                value = int(value)
            except ValueError:
                raise pytest.UsageError(
                    f"{name} = {value!r} in the pytest configuration is not an integer"
                ) from None
        if value is not None and name == "feed_profile" and value not in ("fast", "ci", "thorough"):
            raise pytest.UsageError(
                f"feed_profile = {value!r} in the pytest configuration: use fast, ci or thorough"
            )
        if value is not None and name == "feed_partner" and value not in _DIALECTS:
            raise pytest.UsageError(
                f"feed_partner = {value!r} in the pytest configuration: use {', '.join(_DIALECTS)}"
            )
    if value is None:
        value = {"feed_seed": 0, "feed_profile": "fast"}.get(name)
    return value


def _configured(config: pytest.Config) -> bool:
    return any(feed_option(config, name) for name in _TARGET_OPTIONS)


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
    if _configured(config):
        config.pluginmanager.register(ConformanceSession(config), "feed-harness-conformance")


class ConformanceSession:
    """Adds one item per selected clause and runs the verification once, on the first item."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.target: Target = _target(config)
        self.report: Report | None = None
        self.error: str | None = None

    def pytest_report_header(self, config: pytest.Config) -> str:
        seed, profile = feed_option(config, "feed_seed"), feed_option(config, "feed_profile")
        if _no_clauses(feed_option(config, "feed_clauses")):
            return f"feed-harness: the fixtures drive {self.target.label} (no clause item)"
        partner = feed_option(config, "feed_partner")
        shown = f", partner {partner}" if partner else ""
        return (
            f"feed-harness: verifying {self.target.label} (seed {seed}, profile {profile}"
            f"{shown}); the fixtures drive it too"
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from fake_partner import ScenarioError
        from harness.clauses.registry import UnknownClauseError, select_clauses

        wanted = feed_option(config, "feed_clauses")
        if _no_clauses(wanted):
            return
        try:
            chosen = select_clauses(_split(wanted))
            _dialect(config, _load_scenario(feed_option(config, "feed_scenario")))
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
                seed=feed_option(config, "feed_seed"),
                scenario=feed_option(config, "feed_scenario"),
                profile=feed_option(config, "feed_profile"),
                partner=feed_option(config, "feed_partner"),
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
        if result.outcome == "warned":  # a warning clause that failed: passes, said loudly
            self.user_properties.append(("outcome", "warned"))
            warnings.warn(FeedHarnessWarning(f"{result.id} warned: {result.message}"), stacklevel=1)

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
    """The connector the ``--feed-*`` options (or their ini twins) name (default: the
    reference connector). An in-process connector that cannot be imported is one usage
    error here, not one failure per clause."""
    from harness.verify import VerifyUsageError, make_target

    connector = feed_option(config, "feed_connector")
    if connector:
        _check_importable(connector)
    try:
        return make_target(
            connector,
            cmd=feed_option(config, "feed_cmd"),
            url=feed_option(config, "feed_url"),
            gateway_port=feed_option(config, "feed_gateway_port"),
        )
    except VerifyUsageError as exc:
        raise pytest.UsageError(_as_option(str(exc))) from None


def _check_importable(spec: str) -> None:
    """Import ``MODULE:ATTR`` (the current directory importable, as ``python -m`` makes it)."""
    from harness.cli import importable_cwd
    from harness.drivers import ConnectorLoadError
    from harness.drivers.loading import import_connector

    importable_cwd()
    try:
        import_connector(spec)
    except ConnectorLoadError as exc:
        raise pytest.UsageError(f"--feed-connector / feed_connector: {exc}") from None


def _no_clauses(text: str | None) -> bool:
    return (text or "").strip().lower() == NO_CLAUSES


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


def _dialect(config: pytest.Config, scenario: Any) -> str:
    """The dialect ``--feed-partner`` / ``feed_partner`` and the scenario agree on; a usage
    error when they differ."""
    from harness.dialects import resolve_dialect
    from harness.errors import VerifyUsageError

    try:
        return resolve_dialect(
            feed_option(config, "feed_partner"), scenario, option="--feed-partner"
        )
    except VerifyUsageError as exc:
        raise pytest.UsageError(str(exc)) from None


def _load_scenario(source: str | Path | None) -> Any:
    from fake_partner import load_scenario

    return load_scenario(source) if source is not None else None


# --------------------------------------------------------------------------- fixtures


def _scenario_for(request: pytest.FixtureRequest) -> Any:
    """The marker's scenario (files relative to the test file) or ``--feed-scenario``."""
    marker = request.node.get_closest_marker("feed_scenario")
    if marker is None:
        return _load_scenario(feed_option(request.config, "feed_scenario"))
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
    """A fresh fake partner; scenario from ``@pytest.mark.feed_scenario`` or ``--feed-scenario``,
    dialect from ``--feed-partner`` / ``feed_partner`` (else the scenario's)."""
    from fake_partner import Partner

    scenario = _scenario_for(request)
    return Partner(scenario, dialect=_dialect(request.config, scenario))


@pytest.fixture
def feed_gateway() -> Gateway:
    """A fresh fake plugin gateway (no feed yet; add them with ``add_feed``)."""
    from harness.gateway import Gateway

    return Gateway()


@pytest.fixture
def feed_platform(request: pytest.FixtureRequest) -> Iterator[Platform]:
    """A started platform bound to the configured connector (``--feed-connector`` /
    ``feed_connector`` ...); without one, the built-in reference connector, with a
    :class:`FeedHarnessWarning` saying so. The test's ``feed_connector`` property names it."""
    from harness.platform import Platform

    target = _target(request.config)
    if not _configured(request.config):
        warnings.warn(
            FeedHarnessWarning(
                "feed_platform drives the built-in reference connector: no connector is "
                "configured (give --feed-connector / --feed-cmd / --feed-url, or feed_connector "
                "= MODULE:ATTR in pytest.ini / [tool.pytest.ini_options])"
            ),
            stacklevel=1,
        )
    request.node.user_properties.append(("feed_connector", target.label))
    scenario = _scenario_for(request)
    with Platform(
        **target.platform_kwargs(),
        scenario=scenario,
        partner=_dialect(request.config, scenario),
    ) as platform:
        yield platform
