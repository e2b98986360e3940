"""Real servers for tests: any ASGI app served by uvicorn on 127.0.0.1 in a thread."""

import socket
import threading
import time

import uvicorn
from fastapi import FastAPI

from gateway.api.app import create_app
from gateway.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A real uvicorn serving an app (the gateway by default) on 127.0.0.1 in a thread."""

    def __init__(self, app: "Settings | FastAPI") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if isinstance(app, Settings):
            app = create_app(app)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                log_level="critical", access_log=False, log_config=None)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the gateway did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
