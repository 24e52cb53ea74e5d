#!/usr/bin/env python3
"""A resumable upload client (draft-ietf-httpbis-resumable-upload-15) for Wharf's inbox.

Speaks HTTP/1.1 over mutual TLS on a raw socket, because Python's http.client takes a
104 (Upload Resumption Supported) interim response for the final one.

    resumable-upload.py send     https://HOST:PORT/inbox/NAME FILE   create, and resume until done
    resumable-upload.py create   https://HOST:PORT/inbox/NAME FILE   create; the whole file in one request
    resumable-upload.py resume   https://HOST:PORT/uploads/ID FILE   HEAD, then PATCH the rest
    resumable-upload.py offset   https://HOST:PORT/uploads/ID        HEAD only
    resumable-upload.py cancel   https://HOST:PORT/uploads/ID        DELETE

Common options: --cert, --key, --cacert (the partner bundle's files). `--stop-after N`
breaks the connection after N bytes of content; `--hold` keeps it open instead and waits
to be killed. Each response is printed as one JSON line: {"event", "status", "headers",
"body"}; "offset", "stopped" and "holding" lines say what the client did.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse

CHUNK = 256 * 1024


def emit(event, **fields):
    print(json.dumps(dict(event=event, **fields), sort_keys=True), flush=True)


class Connection:
    def __init__(self, url, args):
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname, parts.port or 443, parts.path
        context = ssl.create_default_context(cafile=args.cacert)
        context.load_cert_chain(args.cert, args.key)
        raw = socket.create_connection((self.host, self.port), timeout=args.timeout)
        self.sock = context.wrap_socket(raw, server_hostname=self.host)
        self.reader = self.sock.makefile("rb")

    def send_head(self, method, headers):
        lines = [f"{method} {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())

    def read_response(self, method):
        """The next response: (status, headers as a dict of lists, body)."""
        status_line = self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split()[1])
        headers = {}
        while True:
            line = self.reader.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            headers.setdefault(name.strip().lower(), []).append(value.strip())
        body = b""
        if 200 <= status and status not in (204, 304) and method != "HEAD":
            length = int(headers.get("content-length", ["0"])[0])
            body = self.reader.read(length)
        return status, headers, body

    def next_response(self, method):
        """The next response, interim ones (printed) included: ("interim", status, headers)
        or ("final", status, headers, body)."""
        status, headers, body = self.read_response(method)
        if 100 <= status < 200:
            emit("interim", status=status, headers=headers)
            return ("interim", status, headers)
        return ("final", status, headers, body)

    def abort(self):
        # A broken connection, not a TLS close: as a network failure leaves it.
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
        self.sock.close()


def print_final(status, headers, body):
    text = body.decode("utf-8", "replace")
    emit("final", status=status, headers=headers, body=text)
    return status


def stream(conn, path, start, end, stop_after, hold):
    """Sends bytes [start, end) of the file; True if all were sent."""
    sent = 0
    with open(path, "rb") as source:
        source.seek(start)
        position = start
        while position < end:
            piece = source.read(min(CHUNK, end - position))
            if stop_after is not None and sent + len(piece) >= stop_after:
                piece = piece[: stop_after - sent]
                conn.sock.sendall(piece)
                sent += len(piece)
                if hold:
                    emit("holding", sent=sent)
                    while True:
                        time.sleep(3600)
                conn.abort()
                emit("stopped", sent=sent)
                return False
            conn.sock.sendall(piece)
            sent += len(piece)
            position += len(piece)
    return True


def digest(path, start=0, end=None):
    hasher = hashlib.sha256()
    with open(path, "rb") as source:
        source.seek(start)
        left = (end if end is not None else os.path.getsize(path)) - start
        while left > 0:
            piece = source.read(min(CHUNK, left))
            hasher.update(piece)
            left -= len(piece)
    return "sha-256=:" + base64.b64encode(hasher.digest()).decode() + ":"


def await_final(conn, method):
    while True:
        result = conn.next_response(method)
        if result[0] == "final":
            return print_final(*result[1:])


def create(args):
    """Creates the upload with the whole file in one request; its status, or None if it
    broke off. `args.location` is the upload's address once the server announced it."""
    size = os.path.getsize(args.file)
    conn = Connection(args.url, args)
    headers = [
        ("Content-Length", str(size)), ("Upload-Complete", "?1"), ("Upload-Length", str(size)),
        ("Repr-Digest", digest(args.file)), ("Content-Type", "application/octet-stream"),
    ]
    conn.send_head("PUT", headers)
    # The server announces the upload before the content: wait for that 104.
    result = conn.next_response("PUT")
    if result[0] == "final":
        return print_final(*result[1:])
    if result[1] == 104:
        args.location = result[2].get("location", [None])[0]
        emit("created", location=args.location)
    if not stream(conn, args.file, 0, size, args.stop_after, args.hold):
        return None
    return await_final(conn, "PUT")


def head(url, args):
    conn = Connection(url, args)
    conn.send_head("HEAD", [])
    _, status, headers, _ = conn.next_response("HEAD")
    conn.sock.close()
    offset = int(headers.get("upload-offset", ["-1"])[0])
    complete = headers.get("upload-complete", ["?0"])[0] == "?1"
    emit("offset", status=status, offset=offset, complete=complete, headers=headers)
    return status, offset, complete


def resume(url, args):
    size = os.path.getsize(args.file)
    status, offset, complete = head(url, args)
    if status != 204 or complete:
        return status
    conn = Connection(url, args)
    headers = [
        ("Content-Type", "application/partial-upload"), ("Upload-Offset", str(offset)), ("Upload-Complete", "?1"),
        ("Content-Length", str(size - offset)), ("Content-Digest", digest(args.file, offset, size)),
    ]
    conn.send_head("PATCH", headers)
    if not stream(conn, args.file, offset, size, args.stop_after, args.hold):
        return None
    return await_final(conn, "PATCH")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["send", "create", "resume", "offset", "cancel"])
    parser.add_argument("url")
    parser.add_argument("file", nargs="?")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--cacert", required=True)
    parser.add_argument("--stop-after", type=int)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--attempts", type=int, default=10)
    args = parser.parse_args()

    if args.command == "offset":
        status, _, _ = head(args.url, args)
        return 0 if status == 204 else 1
    if args.command == "cancel":
        conn = Connection(args.url, args)
        conn.send_head("DELETE", [])
        return 0 if await_final(conn, "DELETE") == 204 else 1
    if args.command == "resume":
        status = resume(args.url, args)
        return 0 if status in (200, 201, 204) else 1
    if args.command == "create":
        args.location = None
        status = create(args)
        return 0 if status in (200, 201) else 1
    # send: create, then resume after each broken attempt or server error.
    args.location = None
    try:
        status = create(args)
    except (OSError, ConnectionError) as error:
        emit("broken", reason=str(error))
        status = None
    base = urllib.parse.urlsplit(args.url)
    for _ in range(args.attempts):
        if status is not None and status < 500:
            return 0 if status in (200, 201) else 1
        if args.location is None:
            emit("failed", reason="no upload resource was announced")
            return 1
        args.stop_after = None
        try:
            status = resume(f"{base.scheme}://{base.netloc}{args.location}", args)
        except (OSError, ConnectionError) as error:
            emit("broken", reason=str(error))
            status = None
            time.sleep(1)
    return 1


if __name__ == "__main__":
    sys.exit(main())
