"""The connector's log: every line checked for the run's secrets, kept masked and bounded."""

from __future__ import annotations

import logging
import sys

import pytest

from harness.connector_log import MAX_LEAKS, ConnectorLog, LogCapture
from harness.drivers import CommandDriver, ConnectorStartError, PlatformEnv
from harness.redaction import MASK, Redactor


def _log(tail_lines: int = 200) -> ConnectorLog:
    redactor = Redactor()
    redactor.add_secret("s3cret-client-value", "client_secret")
    redactor.add_secret("plugin-token-value", "plugin_token")
    return ConnectorLog(redactor, tail_lines=tail_lines)


def test_a_line_with_a_secret_is_a_leak_kept_masked() -> None:
    log = _log()
    log.feed("starting")
    log.feed("posting with client_secret=s3cret-client-value now")
    assert log.lines == 2
    [leak] = log.leaks
    assert (leak.line, leak.kinds) == (2, ("client_secret",))
    assert "s3cret" not in leak.text
    assert MASK in leak.text
    assert "s3cret" not in log.tail_text()


def test_the_tail_is_bounded_and_leaks_are_capped_but_counted() -> None:
    log = _log(tail_lines=3)
    for n in range(MAX_LEAKS + 5):
        log.feed(f"line {n} s3cret-client-value")
    assert len(log.tail) == 3
    assert len(log.leaks) == MAX_LEAKS
    assert log.leaked_lines == MAX_LEAKS + 5


def test_a_secret_learned_later_is_masked_in_the_tail() -> None:
    log = _log()
    log.feed("token abcd-later-token")
    assert log.leaks == []  # unknown when the line came
    log.redactor.add_secret("abcd-later-token", "access_token")
    assert "abcd-later-token" not in log.tail_text()


def test_the_capture_takes_the_connectors_records_not_the_harness_own() -> None:
    log = _log()
    capture = LogCapture(log)
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        logging.getLogger("my_connector").warning("secret %s", "s3cret-client-value")
        logging.getLogger("harness.sdk").warning("sdk line")
        logging.getLogger("harness.simulator").warning("harness line")
        logging.getLogger("fake_partner.server").warning("partner line")
    finally:
        root.removeHandler(capture)
    assert log.lines == 2
    assert [leak.kinds for leak in log.leaks] == [("client_secret",)]
    assert "harness line" not in log.tail_text()


def test_the_command_driver_feeds_every_output_line() -> None:
    script = "print('hello s3cret-client-value', flush=True)\nimport time\ntime.sleep(30)"
    driver = CommandDriver([sys.executable, "-c", script], start_timeout=2.0)
    driver.log = log = _log()
    env = PlatformEnv("127.0.0.1", 1, "worker-1", "plugin-token-value")
    try:
        with pytest.raises(ConnectorStartError):  # it never answers GET /v1/status
            driver.start(env)
    finally:
        driver.stop()
    assert log.lines >= 1
    assert [leak.kinds for leak in log.leaks] == [("client_secret",)]
