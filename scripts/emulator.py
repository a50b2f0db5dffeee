"""The S3/DynamoDB/SQS emulator of raptr's tests and demo: moto's server on
127.0.0.1, on a free port.

Prints `port N` once it listens, then serves until its standard input
closes: the process that started it holds the other end, so the emulator
stops when that process ends, whether it finished, failed or was killed.

moto handles concurrent requests on threads without locking its state, so
a conditional write can interleave with another write, and a failed
DynamoDB transaction restores a snapshot that drops writes made meanwhile.
AWS does neither. The server therefore handles one request at a time (over
many kept-alive connections), which makes every request atomic, as on AWS.

    python scripts/emulator.py [PORT]      # 0 or nothing: any free port
"""

import logging
import os
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


def serialized(app):
    lock = threading.Lock()

    def handle(environ, start_response):
        with lock:
            result = app(environ, start_response)
            try:
                return [b"".join(result)]
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()

    return handle


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = serialized(DomainDispatcherApplication(create_backend_app))
    server = make_server(
        "127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"port {server.server_address[1]}", flush=True)
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except KeyboardInterrupt:
        pass
    # Exit at once: the server's worker threads must not keep us alive.
    os._exit(0)


if __name__ == "__main__":
    main()
