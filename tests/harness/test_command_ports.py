"""A connector whose free port was taken before it bound it is launched again elsewhere."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.drivers import CommandDriver, ConnectorStartError, PlatformEnv

SERVER = """
import os, sys, http.server
marker = sys.argv[1]
if not os.path.exists(marker):
    open(marker, "w").close()
    print("OSError: [Errno 98] error while attempting to bind: address already in use", flush=True)
    sys.exit(1)

class Status(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(os.environ["PLUGIN_PORT"])), Status).serve_forever()
"""
ENV = PlatformEnv("127.0.0.1", 1, "worker-1", "plugin-token-value")


def _driver(tmp_path: Path, script: str) -> CommandDriver:
    path = tmp_path / "connector.py"
    path.write_text(script)
    return CommandDriver([sys.executable, str(path), str(tmp_path / "marker")], start_timeout=10)


def test_a_taken_port_is_retried_on_another(tmp_path: Path) -> None:
    driver = _driver(tmp_path, SERVER)
    try:
        driver.start(ENV)
        assert driver.call("GET", "/v1/status", None, timeout=5).status == 200
    finally:
        driver.stop()
    assert (tmp_path / "marker").exists()


def test_any_other_exit_is_not_retried(tmp_path: Path) -> None:
    script = "import os, sys\nopen(sys.argv[1], 'a').write('x')\nprint('boom')\nsys.exit(1)\n"
    driver = _driver(tmp_path, script)
    with pytest.raises(ConnectorStartError, match="exited with code 1"):
        driver.start(ENV)
    assert (tmp_path / "marker").read_text() == "x"
