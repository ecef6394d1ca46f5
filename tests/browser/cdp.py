"""Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe).

No WebDriver, no Node driver and no extra Python package: Chromium reads commands
from file descriptor 3 and writes replies and events to 4, each a JSON message
ending in a NUL byte. Enough of the protocol for the browser tests: open a page
at a viewport size, record its requests and console, evaluate script in it (not
subject to the page's Content-Security-Policy: DevTools evaluates, the page does
not), press keys and take screenshots.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class ProtocolError(RuntimeError):
    pass


def _high_fd(fd: int) -> int:
    """A copy of ``fd`` numbered 10 or above, so moving it to 3 or 4 clobbers nothing."""
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


@dataclass
class Visit:
    """One page load: what it requested, said on its console, and answered."""

    url: str
    target: str
    session: str
    status: int | None = None
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)


class Chromium:
    def __init__(self, binary: Path, profile: Path, *flags: str, timeout: float = 60.0):
        self.timeout = timeout
        to_chrome_r, to_chrome_w = (_high_fd(fd) for fd in os.pipe())
        from_chrome_r, from_chrome_w = (_high_fd(fd) for fd in os.pipe())
        # bash puts the pipe ends on 3 and 4 and closes the originals, then becomes Chromium.
        launcher = (
            f'exec "$0" "$@" 3<&{to_chrome_r} 4>&{from_chrome_w} '
            f"{to_chrome_r}<&- {from_chrome_w}>&-"
        )
        self.proc = subprocess.Popen(
            [
                "bash",
                "-c",
                launcher,
                str(binary),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                *flags,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(to_chrome_r, from_chrome_w),
            start_new_session=True,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._out = to_chrome_w
        self._in = from_chrome_r
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []

    # --- the protocol ------------------------------------------------------------

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self._in], [], [], left)
            if ready:
                chunk = os.read(self._in, 1 << 20)
                if not chunk:
                    raise ProtocolError(f"Chromium closed the pipe (exit {self.proc.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._next_id += 1
        message: dict = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self._events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self._events.remove(event)
                    return event["params"]
            self._events.append(self._receive(deadline))

    def events(self, session: str) -> list[dict]:
        """The events of ``session`` received so far, taken from the buffer."""
        mine = [e for e in self._events if e.get("sessionId") == session]
        self._events = [e for e in self._events if e.get("sessionId") != session]
        return mine

    # --- pages ------------------------------------------------------------------------

    def open(self, url: str, width: int, height: int) -> Visit:
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable", session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        self.call("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired", session)
        return self.record(Visit(url, target, session))

    def record(self, visit: Visit) -> Visit:
        """Take the page's events so far into ``visit``."""
        for event in self.events(visit.session):
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                visit.requests.append(params["request"]["url"])
            elif method == "Network.responseReceived" and params.get("type") == "Document":
                visit.status = params["response"]["status"]
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                entry = params["entry"]
                # A 4xx page is "failed to load" to the console; the test checks the status.
                if entry.get("source") == "network" and entry.get("url") == visit.url:
                    continue
                visit.console_errors.append(f"{entry['text']} ({entry.get('url')})")
            elif method == "Runtime.exceptionThrown":
                visit.console_errors.append(str(params["exceptionDetails"]))
            elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
                visit.console_errors.append(str(params["args"]))
        return visit

    def evaluate(self, visit: Visit, expression: str, *, await_promise: bool = False):
        result = self.call(
            "Runtime.evaluate",
            visit.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise ProtocolError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def press_tab(self, visit: Visit) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                visit.session,
                type=kind,
                key="Tab",
                code="Tab",
                windowsVirtualKeyCode=9,
            )

    def screenshot(self, visit: Visit, path: Path) -> bytes:
        data = base64.b64decode(
            self.call("Page.captureScreenshot", visit.session, format="png")["data"]
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data

    def close(self, visit: Visit) -> None:
        self.call("Target.closeTarget", targetId=visit.target)

    def quit(self) -> None:
        with contextlib.suppress(ProtocolError, TimeoutError, OSError):
            self.call("Browser.close")
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)
