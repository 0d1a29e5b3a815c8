"""A TCP proxy on loopback between client and broker that can reset, stall and blackhole connections.

- ``reset()``   closes every open connection with a TCP RST on both sides (a crashed peer or NAT);
- ``stall()``   keeps the sockets open but stops moving bytes both ways (a hung network path:
                nothing arrives, nothing fails, only heartbeats and timeouts can tell);
- ``blackhole()`` also accepts new connections but never forwards them (a dead route);
- ``heal()``    forwards again: stalled bytes flow on, new connections reach the broker.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

__all__ = ["FaultProxy"]


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._flowing = threading.Event()
        self._flowing.set()
        self._blackhole = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True, name="fault-proxy").start()

    def url(self, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}/%2F"

    def _track(self, *sockets: socket.socket) -> None:
        with self._lock:
            self._sockets.update(sockets)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            self._track(client)
            if self._blackhole:
                continue  # hold it open, never answer
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                self._kill(client)
                continue
            upstream.settimeout(None)
            self._track(upstream)
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self._flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        finally:
            self._kill(source)
            self._kill(target)

    def _kill(self, sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close → RST
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            self._sockets.discard(sock)

    def reset(self) -> None:
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._kill(sock)

    def stall(self) -> None:
        self._flowing.clear()

    def blackhole(self) -> None:
        self._blackhole = True
        self.stall()

    def heal(self) -> None:
        self._blackhole = False
        self._flowing.set()

    def close(self) -> None:
        self._closed = True
        self.heal()
        with contextlib.suppress(OSError):
            self._server.close()
        self.reset()
