#!/usr/bin/env python3
"""Protocol probes for scripts/services (standard library only, no project venv).

Usage:
  probe.py mongo-hello HOST PORT        send OP_MSG {hello: 1, $db: "admin"}, require ok: 1
  probe.py http METHOD URL [JSON_BODY]  HTTP request; prints the body, exit 1 on error/status >= 400
"""

import socket
import struct
import sys
import urllib.error
import urllib.request

OP_MSG = 2013


def _cstring(s: str) -> bytes:
    return s.encode() + b"\x00"


def _bson_hello() -> bytes:
    elements = b"\x10" + _cstring("hello") + struct.pack("<i", 1)
    db = _cstring("admin")
    elements += b"\x02" + _cstring("$db") + struct.pack("<i", len(db)) + db
    return struct.pack("<i", len(elements) + 5) + elements + b"\x00"


def _bson_top_level(doc: bytes) -> dict:
    """Decode the scalar top-level fields of a BSON document (nested values are skipped)."""
    out = {}
    pos, end = 4, struct.unpack_from("<i", doc)[0] - 1
    while pos < end:
        kind = doc[pos]
        pos += 1
        nul = doc.index(b"\x00", pos)
        name = doc[pos:nul].decode()
        pos = nul + 1
        if kind == 0x01:  # double
            out[name] = struct.unpack_from("<d", doc, pos)[0]
            pos += 8
        elif kind == 0x02:  # string
            n = struct.unpack_from("<i", doc, pos)[0]
            out[name] = doc[pos + 4 : pos + 3 + n].decode()
            pos += 4 + n
        elif kind in (0x03, 0x04):  # document, array
            pos += struct.unpack_from("<i", doc, pos)[0]
        elif kind == 0x05:  # binary
            pos += 5 + struct.unpack_from("<i", doc, pos)[0]
        elif kind == 0x07:  # ObjectId
            pos += 12
        elif kind == 0x08:  # bool
            out[name] = doc[pos] == 1
            pos += 1
        elif kind in (0x09, 0x11, 0x12):  # datetime, timestamp, int64
            out[name] = struct.unpack_from("<q", doc, pos)[0]
            pos += 8
        elif kind == 0x0A:  # null
            out[name] = None
        elif kind == 0x10:  # int32
            out[name] = struct.unpack_from("<i", doc, pos)[0]
            pos += 4
        elif kind == 0x13:  # decimal128
            pos += 16
        else:
            break
    return out


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by server")
        buf += chunk
    return buf


def mongo_hello(host: str, port: int) -> int:
    body = struct.pack("<I", 0) + b"\x00" + _bson_hello()
    msg = struct.pack("<iiii", 16 + len(body), 1, 0, OP_MSG) + body
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.settimeout(5)
        sock.sendall(msg)
        length, _req, response_to, opcode = struct.unpack("<iiii", _recv_exact(sock, 16))
        payload = _recv_exact(sock, length - 16)
    if opcode != OP_MSG or response_to != 1 or payload[4] != 0:
        print(f"unexpected reply: opcode={opcode} responseTo={response_to}", file=sys.stderr)
        return 1
    reply = _bson_top_level(payload[5:])
    if reply.get("ok") != 1:
        print(f"hello failed: {reply}", file=sys.stderr)
        return 1
    wire, primary = reply.get("maxWireVersion"), reply.get("isWritablePrimary")
    print(f"ok maxWireVersion={wire} isWritablePrimary={primary}")
    return 0


def http(method: str, url: str, body: "str | None" = None) -> int:
    data = body.encode() if body is not None else None
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP URL: {url}")
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            sys.stdout.write(resp.read().decode())
            return 0
    except urllib.error.HTTPError as exc:
        sys.stdout.write(exc.read().decode(errors="replace"))
        print(f"\nHTTP {exc.code} for {method} {url}", file=sys.stderr)
        return 1


def main(argv: "list[str]") -> int:
    try:
        if len(argv) == 3 and argv[0] == "mongo-hello":
            return mongo_hello(argv[1], int(argv[2]))
        if len(argv) in (3, 4) and argv[0] == "http":
            return http(*argv[1:])
    except (OSError, ValueError, struct.error) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
