"""Event-loop stalls under hostile files (issue 23): the worst ``/healthz`` wait on each server
while each heavy path runs.

The offline provider (``python -m helpers.offline``) and a relay in front of it (``python -m
helpers.relay --daily-tokens N``, so budgets count) run as child processes on 127.0.0.1; a probe
thread in this process asks both ``/healthz`` every 2 ms, each server on its own keep-alive
connection. A stalled event loop answers nothing until it is free again, so the longest probe
seen while a scenario runs is that server's worst stall (plus about a millisecond of request).

Scenarios, each bounded in size and count (loopback only):

- hostile multipart bodies to the relay: 1 MB and 3 MB of empty parts (``--B\\r\\n\\r\\nx\\r\\n``),
  a body nested 2,000 deep; and a normal 8 MB PDF upload for comparison;
- token counting of attached files: five 7.8 MB text files named in one question (the red team's
  case), and four 1 MB files (under the attachment cap, counted to the end);
- extraction at the provider, uploaded through the relay: a 0.41 MB .docx zip bomb, a PDF page
  of 1,000,000 text operators (over the bound), one of 120,000 (within it: the worst accepted),
  a PDF of 3,000 pages.

``--tree PATH`` runs the servers from another checkout (e.g. the commit before the fix, for a
before/after table); ``--quick`` skips the largest scenarios. The aim: every stall under 100 ms.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-stall-key"
FORM = "multipart/form-data; boundary=B"
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


class Server:
    """A child process that prints its URL on its first line."""

    def __init__(self, tree: Path, args: list[str], env: dict[str, str], marker: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(tree),
               "LLM_PROVIDER": "offline", **env}
        self.proc = subprocess.Popen([sys.executable, *args], cwd=tree, env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if marker not in line:
            self.stop()
            raise SystemExit(f"{args[1]} did not start: {line!r}")
        self.url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)


class Probe:
    """Ask ``url`` for /healthz every 2 ms from a thread; keep (start, seconds) of each."""

    def __init__(self, url: str) -> None:
        self.url, self.samples = url, []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self.stopping.is_set():
                started = time.perf_counter()
                client.get(self.url)
                self.samples.append((started, time.perf_counter() - started))
                time.sleep(0.002)

    def worst(self, since: float, until: float) -> float:
        return max((s for t, s in self.samples if since <= t <= until), default=0.0)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(130)


def nested(depth: int) -> bytes:
    heads = b"".join(f"--b{i}\r\nContent-Type: multipart/mixed; boundary=b{i + 1}\r\n\r\n"
                     .encode() for i in range(depth))
    return heads + b"x" + b"".join(f"\r\n--b{i}--\r\n".encode() for i in reversed(range(depth)))


def docx_bomb() -> bytes:
    """About 0.41 MB: 420 MB of spaces in word/document.xml."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        with archive.open("word/document.xml", "w", force_zip64=False) as out:
            out.write(f"<w:document xmlns:w='{W}'><w:body>".encode())
            for _ in range(420):
                out.write(b" " * 1_000_000)
            out.write(b"</w:body></w:document>")
    return buf.getvalue()


def pdf(pages: int = 1, operators: int = 0, attachment: int = 0) -> bytes:
    """Blank pages; ``operators`` text operators on the first; an embedded file of N bytes."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(200, 200)
    page = writer.pages[0]
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject(
        {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf " + b"(x) Tj " * max(operators, 1) + b"ET")
    page.replace_contents(stream)
    if attachment:
        writer.add_attachment("data.bin", os.urandom(attachment))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout to run the servers from")
    parser.add_argument("--quick", action="store_true", help="skip the largest scenarios")
    parser.add_argument("--in-process", action="store_true",
                        help="the relay's own offline provider, in its process (no key: what "
                             "a learner's relay does); only the relay is probed")
    args = parser.parse_args()
    with ExitStack() as stack:
        files = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stall-"))
        upstream: list[str] = []
        if not args.in_process:
            provider = Server(args.tree, ["-m", "helpers.offline", "--port", "0", "--delay-ms",
                                          "0", "--api-key", KEY], {"OFFLINE_FILES_DIR": files},
                              "http://")
            stack.callback(provider.stop)
            upstream = ["--base-url", provider.url, "--api-key", KEY]
        relay = Server(args.tree, ["-m", "helpers.relay", "--port", "0", *upstream, "--model",
                                   "moonshot-v1-8k", "--read-timeout", "120", "--daily-tokens",
                                   "50000000"], {"OFFLINE_FILES_DIR": files}, "serving at")
        stack.callback(relay.stop)
        probes = {"relay": Probe(relay.url + "/healthz")}
        if not args.in_process:
            probes["provider"] = Probe(provider.url.removesuffix("/v1") + "/healthz")
        for probe in probes.values():
            stack.callback(probe.stop)
        http = stack.enter_context(httpx.Client(timeout=300))

        def upload(name: str, data: bytes) -> httpx.Response:
            return http.post(relay.url + "/api/files", files={"file": (name, data)})

        def raw(body: bytes, content_type: str = FORM) -> Callable[[], httpx.Response]:
            return lambda: http.post(relay.url + "/api/files", content=body,
                                     headers={"content-type": content_type})

        def ask(sizes: list[int]) -> Callable[[], httpx.Response]:
            ids = [upload(f"notes{i}.txt", b"word " * (s // 5)).json()["id"]
                   for i, s in enumerate(sizes)]
            return lambda: http.post(relay.url + "/api/chat/stream",
                                     json={"question": "Sum them up.", "files": ids})

        scenarios: list[tuple[str, Callable[[], Callable[[], httpx.Response]]]] = [
            ("multipart: 1 MB of empty parts", lambda: raw(b"--B\r\n\r\nx\r\n" * 104_857)),
            ("multipart: 3 MB of empty parts", lambda: raw(b"--B\r\n\r\nx\r\n" * 314_572)),
            ("multipart: nested 2,000 deep", lambda: raw(
                nested(2000), "multipart/form-data; boundary=b0")),
            ("upload: a normal 8 MB PDF", lambda: (
                lambda data: lambda: upload("big.pdf", data))(pdf(attachment=7_800_000))),
            ("budget: 5 x 7.8 MB files attached", lambda: ask([7_800_000] * 5)),
            ("budget: 4 x 1 MB files attached", lambda: ask([1_000_000] * 4)),
            ("extract: a 0.41 MB .docx bomb", lambda: (
                lambda data: lambda: upload("bomb.docx", data))(docx_bomb())),
            ("extract: a PDF page of 1M operators", lambda: (
                lambda data: lambda: upload("ops.pdf", data))(pdf(operators=1_000_000))),
            ("extract: a PDF page of 120k operators", lambda: (
                lambda data: lambda: upload("dense.pdf", data))(pdf(operators=120_000))),
            ("extract: a PDF of 3,000 pages", lambda: (
                lambda data: lambda: upload("pages.pdf", data))(pdf(pages=3000))),
        ]
        if args.quick:
            scenarios = [s for s in scenarios if "3 MB" not in s[0] and "5 x" not in s[0]
                         and "1M" not in s[0]]
        print(f"servers from {args.tree}" + (" (provider in the relay's process)"
                                               if args.in_process else ""))
        print(f"{'scenario':38} {'status':>6} {'took':>8} {'relay stall':>12} "
              f"{'provider stall':>15}")
        for name, prepare in scenarios:
            request = prepare()  # uploads a scenario needs are not measured
            time.sleep(0.2)
            started = time.perf_counter()
            answer = request()
            ended = time.perf_counter()
            time.sleep(0.2)  # a probe sent just before the end has come back
            relay_worst = probes["relay"].worst(started, ended)
            provider_worst = (f"{probes['provider'].worst(started, ended) * 1000:.0f}ms"
                              if "provider" in probes else "-")
            said = "" if answer.status_code < 400 else answer.text[:70] if not \
                answer.headers.get("content-type", "").startswith("application/json") \
                else answer.json()["error"]["message"][:70]
            print(f"{name:38} {answer.status_code:>6} {ended - started:>7.2f}s "
                  f"{relay_worst * 1000:>10.0f}ms {provider_worst:>15}  {said}", flush=True)
            for file in http.get(relay.url + "/api/files").json()["data"]:
                http.delete(relay.url + f"/api/files/{file['id']}")


if __name__ == "__main__":
    main()
