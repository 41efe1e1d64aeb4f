# Helpers for the Python end-to-end tests of `cofi serve` (imported by
# serve_*.py; the .py extension keeps ctest from running this file). The
# Python counterpart of serve_common.bash: two small models, a server on a
# free loopback port, plain HTTP requests, and raw sockets for what no
# well-behaved client sends.
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

COFI = os.environ.get("COFI") or os.path.join(os.path.dirname(__file__), "../../build/cofi")


def fail(msg):
    print("FAIL: %s: %s" % (os.path.basename(sys.argv[0]), msg), file=sys.stderr)
    sys.exit(1)


def passed(msg=""):
    print("PASS: %s%s" % (os.path.basename(sys.argv[0]), (": " + msg) if msg else ""))
    sys.exit(0)


def run(args, what):
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        fail("%s: exit %d: %s" % (what, p.returncode, p.stdout[-2000:]))
    return p.stdout


def make_models(d):
    """Two models of the same small log ($d/a.cofi, $d/b.cofi: different
    factors, so different checksums); returns {path: checksum}."""
    with open(os.path.join(d, "data.tsv"), "w") as f:
        f.write("user_id\titem_id\tvalue\n")
        for u in range(1, 41):
            for j in range(1, 31):
                if (u * 7 + j * (1 + u % 4)) % 5 < 2:
                    f.write("%d\ti%d\t%d\n" % (u, j, 1 + (u + j) % 3))
    sums = {}
    for name, extra in (("a", ["--factors", "8", "--iterations", "5"]),
                        ("b", ["--factors", "6", "--iterations", "4", "--seed", "7"])):
        path = os.path.join(d, name + ".cofi")
        run([COFI, "train", os.path.join(d, "data.tsv"), "--quiet", "-o", path] + extra,
            "train " + name)
        info = json.loads(run([COFI, "info", path, "--json"], "info " + name))
        sums[path] = info["checksum"]
    return sums


class Server:
    """`cofi serve ARGS` with stderr in LOG; waits for its listening line."""

    def __init__(self, log, args):
        self.log = log
        self.args = args
        self.logf = open(log, "w")
        self.p = subprocess.Popen([COFI, "serve"] + args + ["--port", "0"],
                                  stdout=self.logf, stderr=subprocess.STDOUT)
        self.port = None
        for _ in range(400):
            m = re.search(r"listening on http://.*:(\d+) with", self.text())
            if m:
                self.port = int(m.group(1))
                break
            if self.p.poll() is not None:
                fail("cofi serve %s exited %s at start: %s" % (args, self.p.returncode, self.text()))
            time.sleep(0.05)
        if not self.port:
            self.kill()
            fail("cofi serve %s did not start: %s" % (args, self.text()))

    def text(self):
        with open(self.log, errors="replace") as f:
            return f.read()

    def signal(self, sig):
        os.kill(self.p.pid, sig)

    def alive(self):
        return self.p.poll() is None

    def wait(self, timeout=60):
        """The exit code; fails when the server is still running."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            fail("server still running %d s after the stop signal: %s" % (timeout, self.text()[-2000:]))

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def request(self, method, path, body=None, headers=None, timeout=20):
        """(status, parsed JSON body or None, raw body)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            raw = r.read()
        finally:
            c.close()
        try:
            doc = json.loads(raw)
        except ValueError:
            doc = None
        return r.status, doc, raw


def raw_exchange(port, data, wait=10.0, pause_after=None):
    """Sends data on a new connection and reads until the server closes it
    (or wait seconds pass): (bytes received, closed by the server?)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=wait)
    try:
        s.sendall(data)
        out = b""
        deadline = time.time() + wait
        while time.time() < deadline:
            s.settimeout(max(0.05, deadline - time.time()))
            try:
                b = s.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not b:
                return out, True
            out += b
        return out, False
    finally:
        s.close()


def statuses(data):
    """The status codes of every HTTP response in data, in order."""
    return [int(m.group(1)) for m in re.finditer(rb"HTTP/1\.[01] (\d{3}) ", data)]


def tempdir():
    d = tempfile.mkdtemp(prefix="cofi-e2e-")
    import atexit
    atexit.register(shutil.rmtree, d, True)
    return d
