"""gunicorn's threaded worker, closing its listening sockets as soon as it stops.

On SIGTERM the stock gthread worker stops accepting but keeps its copy of
the listening socket open until its last request is answered: meanwhile the
kernel completes new clients' handshakes into a queue nobody reads, and
resets them when the worker exits. A client (or nginx's proxy_next_upstream)
can retry a refused connection on another replica, but not a request it has
sent and then lost. Closing the copy when accepting stops makes the port
refuse new connections at once, while requests in flight drain.
"""

from __future__ import annotations

from gunicorn.workers.gthread import ThreadWorker


class DrainingThreadWorker(ThreadWorker):
    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if not enabled and not self.alive:  # stopping, not merely at its connection limit
            for listener in self.sockets:
                listener.close()
