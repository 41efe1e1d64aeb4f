# cofi serve: request framing (RFC 9112 section 6.3) with raw sockets
# against the real binary (run by serve_framing.sh). A request whose body
# length is ambiguous is answered 400 (501 for a transfer coding cofi does
# not implement), the connection is closed, and the bytes after it are
# never parsed as a request: each case carries a smuggled GET /health, and
# exactly one answer may come back. Also: a well-framed chunked request
# keeps its connection; a chunked body passing --max-body is answered 413
# before the body ends; a declared one at once.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_common import Server, fail, make_models, passed, raw_exchange, statuses, tempdir  # noqa: E402

D = tempdir()
make_models(D)
srv = Server(os.path.join(D, "serve.log"), [os.path.join(D, "a.cofi"), "--threads", "2",
                                           "--max-body", "1024"])
SMUGGLED = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
BODY = b'{"user_id": "1"}'


def post(headers, body=b"", path=b"/invocations", version=b"HTTP/1.1", method=b"POST"):
    return (method + b" " + path + b" " + version + b"\r\nHost: x\r\n" + b"".join(h + b"\r\n" for h in headers)
            + b"\r\n" + body)


CHUNKED_BODY = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)
# (name, request, status, error code or None when libmicrohttpd answers)
cases = [
    ("two Content-Length, different", post([b"Content-Length: 16", b"Content-Length: 0"], BODY + SMUGGLED),
     400, "bad_framing"),
    ("two Content-Length, same", post([b"Content-Length: 16", b"Content-Length: 16"], BODY + SMUGGLED),
     400, "bad_framing"),
    ("Content-Length list", post([b"Content-Length: 16, 16"], BODY + SMUGGLED), 400, None),
    ("Content-Length + chunked", post([b"Content-Length: 5", b"Transfer-Encoding: chunked"],
                                      b"0\r\n\r\n" + SMUGGLED), 400, "bad_framing"),
    ("chunked + Content-Length", post([b"Transfer-Encoding: chunked", b"Content-Length: 40"],
                                      CHUNKED_BODY + SMUGGLED), 400, "bad_framing"),
    ("gzip, chunked", post([b"Transfer-Encoding: gzip, chunked"], b"0\r\n\r\n" + SMUGGLED),
     501, "unsupported_transfer_coding"),
    ("gzip then chunked, two headers", post([b"Transfer-Encoding: gzip", b"Transfer-Encoding: chunked"],
                                            b"0\r\n\r\n" + SMUGGLED), 501, "unsupported_transfer_coding"),
    ("identity", post([b"Transfer-Encoding: identity"], BODY + SMUGGLED), 400, "bad_framing"),
    ("gzip alone", post([b"Transfer-Encoding: gzip"], BODY + SMUGGLED), 400, "bad_framing"),
    ("chunked, gzip", post([b"Transfer-Encoding: chunked, gzip"], CHUNKED_BODY + SMUGGLED),
     400, "bad_framing"),
    ("chunked twice", post([b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked"],
                           CHUNKED_BODY + SMUGGLED), 400, "bad_framing"),
    ("chunked, chunked", post([b"Transfer-Encoding: chunked, chunked"], CHUNKED_BODY + SMUGGLED),
     400, "bad_framing"),
    ("empty Transfer-Encoding", post([b"Transfer-Encoding: ,"], BODY + SMUGGLED), 400, "bad_framing"),
    ("chunked with a space after it", post([b"Transfer-Encoding: chunked "], CHUNKED_BODY + SMUGGLED),
     400, "bad_framing"),
    ("chunked, empty element", post([b"Transfer-Encoding: chunked,"], CHUNKED_BODY + SMUGGLED),
     400, "bad_framing"),
    ("chunked in HTTP/1.0", post([b"Transfer-Encoding: chunked"], CHUNKED_BODY + SMUGGLED,
                                 version=b"HTTP/1.0"), 400, "bad_framing"),
    ("GET with two Content-Length", post([b"Content-Length: 0", b"Content-Length: 34"], SMUGGLED,
                                         path=b"/ping", method=b"GET"), 400, "bad_framing"),
    ("GET with Content-Length + chunked", post([b"Content-Length: 34", b"Transfer-Encoding: chunked"],
                                               b"0\r\n\r\n" + SMUGGLED, path=b"/ping", method=b"GET"),
     400, "bad_framing"),
    ("declared body over --max-body", post([b"Content-Length: 5000"], b"x" * 100), 413, "body_too_large"),
]
for name, data, want, code in cases:
    got, closed = raw_exchange(srv.port, data)
    st = statuses(got)
    if code is None and set(st) == {want} and b'"model"' not in got:
        # libmicrohttpd answers this one itself, before cofi sees the
        # request; 0.9.75 writes its status line and headers twice (one
        # answer, garbled), then closes.
        st = st[:1]
    if st != [want]:
        fail("%s: answers %s, expected exactly [%d]: %r" % (name, st, want, got[:400]))
    if not closed:
        fail("%s: the connection was left open after a framing error" % name)
    if code and (b'"code":"%s"' % code.encode()) not in got:
        fail("%s: no error code %s: %r" % (name, code, got[-300:]))
    if b"connection: close" not in got.lower():
        fail("%s: no Connection: close: %r" % (name, got[:300]))
    st, _, _ = srv.request("GET", "/ping")
    if st != 200:
        fail("after %s: /ping -> %d" % (name, st))
print("framing: %d ambiguous requests answered once (400/501/413) and closed; no smuggled request answered"
      % len(cases))

# A well-framed chunked request (any case of "chunked") keeps its connection.
for te in (b"chunked", b"Chunked", b"CHUNKED"):
    got, closed = raw_exchange(srv.port, post([b"Transfer-Encoding: " + te], CHUNKED_BODY) + SMUGGLED, wait=3)
    if statuses(got) != [200, 200] or b"recommendations" not in got:
        fail("chunked (%r) then GET /health on one connection: %s %r" % (te, statuses(got), got[:300]))
print("framing: a well-framed chunked request is answered and its connection kept")

# A chunked body passing --max-body: 413 without waiting for the end. The
# body never ends here (no last chunk), so a server that waits for it
# would time out.
chunk = b"200\r\n" + b"x" * 512 + b"\r\n"
got, closed = raw_exchange(srv.port, post([b"Transfer-Encoding: chunked"], chunk * 4), wait=15)
if statuses(got) != [413] or b"body_too_large" not in got:
    fail("a chunked body over --max-body (never finished): %s %r" % (statuses(got), got[:300]))
if not closed:
    fail("the connection stayed open after the chunked 413")
print("framing: a chunked body over --max-body is answered 413 before it ends, and closed")

if not srv.alive():
    fail("the server died")
srv.signal(15)
rc = srv.wait()
if rc != 0:
    fail("exit code %s after SIGTERM; server output: %s" % (rc, srv.text()[-2000:]))
log = srv.text()
if "runtime error" in log or "Sanitizer" in log:
    fail("sanitizer report: %s" % log[-2000:])
passed()
