#!/usr/bin/env python3
"""Drives the dashboard's Try it page like a person, for tests/e2e/ui_browser.sh.

Headless Chromium is controlled through the DevTools protocol over
--remote-debugging-pipe (file descriptors 3 and 4, JSON messages ended by
NUL): the Python standard library is enough, no WebDriver or Node. It types
three title searches into the search box (Input.insertText: real input
events), picks the first result each time (real mouse clicks at the Pick
button's position; the last one with the keyboard: Tab, then Enter), and then checks that the URL holds the picks and
that the page lists exactly what /recommend_cold answers for them, in
order. Any console message, uncaught exception or error log entry fails.

usage: ui_try_click.py BASE_URL PROFILE_DIR "query 1" "query 2" "query 3"
Prints the picked item IDs, comma-separated; exit 1 with a reason on failure.
"""
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Browser:
    def __init__(self, profile):
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # The child sees the command pipe as fd 3 and the answer pipe as fd 4.
        # (Copies first: either end may itself be fd 3 or 4 in the parent.)
        def fds():
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=" + profile, "--remote-debugging-pipe",
             "--window-size=1280,900", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                fail("chromium did not answer in time")
            chunk = os.read(self.from_chrome, 65536)
            if not chunk:
                fail("chromium closed the DevTools pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    fail(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self.events.append(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            fail(f"evaluating {expr}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait(self, expr, what, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expr):
                return
            time.sleep(0.05)
        fail("timed out waiting for " + what)

    def key(self, name, code, text=None):
        down = {"type": "keyDown" if text else "rawKeyDown", "key": name, "code": name,
                "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code}
        if text:
            down["text"] = text
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", "key": name, "code": name,
                                             "windowsVirtualKeyCode": code, "nativeVirtualKeyCode": code})

    def problems(self):
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled":
                out.append(f"console.{p.get('type')}: " + " ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:300])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
                out.append("log: " + p["entry"].get("text", "") + " " + p["entry"].get("url", ""))
        return out

    def close(self):
        self.proc.kill()
        self.proc.wait()


def main():
    if len(sys.argv) < 4:
        fail(__doc__)
    base, profile, queries = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]
    b = Browser(profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
        b.session = b.call("Target.attachToTarget", {"targetId": target, "flatten": True}, session=False)["sessionId"]
        b.call("Runtime.enable")
        b.call("Log.enable")
        b.call("Page.enable")
        b.call("Page.navigate", {"url": base + "/ui/#/try"})
        b.wait("!!document.querySelector('main input[type=search]') && document.activeElement === document.querySelector('main input[type=search]')",
               "the Try it page with its search box focused")
        picked = []
        for q in queries:
            b.eval("document.querySelector('main input[type=search]').focus()")
            b.call("Input.insertText", {"text": q})
            b.wait("!!document.querySelector('ul[aria-label=\"Search results\"] button:not([disabled])')",
                   f"search results for '{q}'")
            box = b.eval("(() => { const r = document.querySelector('ul[aria-label=\"Search results\"] "
                         "button:not([disabled])').getBoundingClientRect(); "
                         "return [r.x + r.width / 2, r.y + r.height / 2]; })()")
            # The item the button picks: the search API's first answer (the list is in its order).
            first = json.load(urllib.request.urlopen(
                f"{base}/items?search={urllib.parse.quote(q)}&k=15"))["items"][0]["item_id"]
            if len(picked) < len(queries) - 1:
                for kind in ("mousePressed", "mouseReleased"):
                    b.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1],
                                                        "button": "left", "clickCount": 1})
            else:
                # The last pick with the keyboard: Tab from the search box
                # reaches the first Pick button, Enter presses it.
                b.key("Tab", 9)
                if not b.eval("document.activeElement === document.querySelector("
                              "'ul[aria-label=\"Search results\"] button:not([disabled])')"):
                    fail("Tab from the search box does not reach the first Pick button")
                b.key("Enter", 13, "\r")
            picked.append(first)
            want = "#/try?liked=" + ",".join(urllib.parse.quote(p, safe="") for p in picked)
            b.wait(f"location.hash === {json.dumps(want)}", f"the URL to become {want}")
            # The hash changes at once, the page re-renders on hashchange:
            # wait for the new page (its chips) before typing again.
            b.wait(f"document.querySelectorAll('.chip').length === {len(picked)} && "
                   "document.activeElement === document.querySelector('main input[type=search]') && "
                   "(!!document.querySelector('main table') || !!document.querySelector('main .error'))",
                   "the page with recommendations after picking " + first)
        answer = json.load(urllib.request.urlopen(
            f"{base}/recommend_cold?liked={','.join(urllib.parse.quote(p, safe='') for p in picked)}&k=10"))
        want = [r.get("title") or r["item_id"] for r in answer["recommendations"]]
        shown = b.eval("[...document.querySelectorAll('main table tbody tr td:nth-child(2) > a')].map(a => a.textContent)")
        if shown != want:
            fail(f"Try it shows {shown}, /recommend_cold answers {want}")
        chips = b.eval("[...document.querySelectorAll('.chip [data-item]')].map(s => s.textContent)")
        if len(chips) != len(picked):
            fail(f"{len(chips)} chips for {len(picked)} picks: {chips}")
        time.sleep(0.3)
        b.eval("1")  # collect late events
        bad = b.problems()
        if bad:
            fail("console: " + "; ".join(bad))
        print(",".join(picked))
    finally:
        b.close()


if __name__ == "__main__":
    main()
