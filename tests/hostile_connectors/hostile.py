"""A connector that misbehaves on purpose, for the harness's bounds tests (stdlib only).

Usage: ``python hostile.py MODE`` on ``127.0.0.1:$PLUGIN_PORT``. Modes:

* ``hang``: accepts connections, never answers (not even ``GET /v1/status``);
* ``hang-after-status``: answers the first ``GET /v1/status``, then never answers;
* ``hang-calls``: answers ``GET /v1/status`` always, never anything else;
* ``exit``: prints an error and exits with code 4 at once;
* ``garbage``: answers the first ``GET /v1/status``, then bytes that are not HTTP;
* ``wrong-content-type``: 200 ``text/html`` pages instead of JSON (status aside);
* ``slow``: every answer correct-looking but after ``$HOSTILE_DELAY`` seconds;
* ``huge``: every answer but status is ``$HOSTILE_MB`` MB (default 50) of JSON (chunked,
  without a content-length, if ``$HOSTILE_CHUNKED`` is set).

``$HOSTILE_PIDFILE`` gets the process id (and with ``$HOSTILE_CHILD`` set, the id of a
sleeping child it starts in its process group), one a line.
"""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
import time

MODE = sys.argv[1] if len(sys.argv) > 1 else "hang"
FOREVER = threading.Event()
_status_answered = threading.Lock()
_HUGE: list[bytes] = []


def _http(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status} OK\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nconnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


OK = json.dumps({"status": "ok"}).encode()


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        while True:
            request = self.rfile.readline()
            if not request:
                return
            length = 0
            while True:
                line = self.rfile.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                self.rfile.read(length)
            if not self.answer(request.decode("latin-1").split(" ")[:2]):
                return

    def answer(self, words: list[str]) -> bool:
        is_status = words == ["GET", "/v1/status"]
        first_status = is_status and _status_answered.acquire(blocking=False)
        hangs_here = (MODE == "hang-after-status" and not first_status) or (
            MODE == "hang-calls" and not is_status
        )
        if MODE == "hang" or hangs_here:
            FOREVER.wait()
        if MODE == "garbage" and not first_status:
            self.wfile.write(b"\x00\xff\xfe SSH-2.0-OpenSSH_9.6 garbage \x07\r\n\r\n")
            return False
        if MODE == "slow":
            time.sleep(float(os.environ.get("HOSTILE_DELAY", "15")))
        if is_status or MODE in ("slow", "hang-after-status", "garbage"):
            self.wfile.write(_http(200, OK))
        elif MODE == "wrong-content-type":
            page = b"<html><body><h1>Welcome to nginx!</h1></body></html>"
            self.wfile.write(_http(200, page, "text/html"))
        elif MODE == "huge":
            self.wfile.write(_HUGE[0])
        return True


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main() -> None:
    if MODE == "exit":
        print("cannot read PARTNER_KEY: giving up", flush=True)
        sys.exit(4)
    if MODE == "huge":
        size = int(float(os.environ.get("HOSTILE_MB", "50")) * 1024 * 1024)
        body = b'{"status":"ok","data":"' + b"x" * size + b'"}'
        if os.environ.get("HOSTILE_CHUNKED"):  # no content-length: the size is not announced
            step = 1024 * 1024
            pieces = [body[i : i + step] for i in range(0, len(body), step)]
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            head += b"transfer-encoding: chunked\r\n\r\n"
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
            _HUGE.append(head + chunks + b"0\r\n\r\n")
        else:
            _HUGE.append(_http(200, body))
    pids = [os.getpid()]
    if os.environ.get("HOSTILE_CHILD"):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        pids.append(child.pid)
    pidfile = os.environ.get("HOSTILE_PIDFILE")
    if pidfile:
        with open(pidfile + ".tmp", "w") as out:
            out.write("".join(f"{pid}\n" for pid in pids))
        os.replace(pidfile + ".tmp", pidfile)
    print(f"hostile connector ({MODE}) listening", flush=True)
    Server(("127.0.0.1", int(os.environ["PLUGIN_PORT"])), Handler).serve_forever()


if __name__ == "__main__":
    main()
