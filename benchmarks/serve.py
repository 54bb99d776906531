"""A static file server for the HTTP shard benchmark: Python's ``http.server``, with each file's body sent by
``sendfile`` (the kernel copies it, outside the GIL), and one thread per connection.

    python benchmarks/serve.py /tmp/inet52k-sh --port 8000

``python -m http.server`` copies every body through Python in 64 KB reads and writes, under one GIL for all its
threads: on the benchmark machine it, not the client, can be what limits a stream of about 1 GB/s. This one
leaves the client's reading as the thing measured. It serves whole files (no range requests), as the training
stream reads them.
"""

from __future__ import annotations

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class SendfileHandler(SimpleHTTPRequestHandler):
    def copyfile(self, source, outputfile) -> None:
        self.wfile.flush()
        self.connection.sendfile(source)  # os.sendfile for a file; plain sends for a listing (an in-memory buffer)

    def log_message(self, format, *args) -> None:  # one line per request would cost the server more than the body
        pass


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--bind", default="127.0.0.1")
    args = p.parse_args(argv)
    handler = functools.partial(SendfileHandler, directory=args.folder)
    with ThreadingHTTPServer((args.bind, args.port), handler) as server:
        print(f"serving {args.folder} at http://{args.bind}:{args.port}", file=sys.stderr)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
