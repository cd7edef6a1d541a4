#!/usr/bin/env python3
"""make soak: many calls at high concurrency while workers are killed.

Starts build/bin/server RR on a free port with its own sockets and function
dir, deploys examples/hello.c, and sends SOAK_CALLS calls (default 100000)
over SOAK_CONCURRENCY keep-alive connections (default 64). SOAK_KILLS lists
the seconds after the start at which a worker is killed with SIGKILL
(default "5,10"; workers 1, 3, 1, ... in turn). Prints answers by status,
latency percentiles, throughput and how long each replacement took, and
writes them into BENCHMARKS.md (section "Soak"). Exits 1 if a call went
unanswered or more calls failed than workers were killed.
Standard library only.
"""
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "build" / "bin"
CALLS = int(os.environ.get("SOAK_CALLS", "100000"))
CONCURRENCY = int(os.environ.get("SOAK_CONCURRENCY", "64"))
KILLS = [float(k) for k in os.environ.get("SOAK_KILLS", "5,10").split(",") if k]


def log(msg):
    print(f"[soak] {msg}", file=sys.stderr, flush=True)


def start_server(tmp):
    args = [str(BIN / "server"), "RR", "--port", "0", "--lb-socket", f"{tmp}/lb.sock",
            "--server-socket", f"{tmp}/s.sock", "--functions-dir", f"{tmp}/functions",
            "--max-queue", str(max(1024, CONCURRENCY * 2))]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            env={**os.environ, "RUST_LOG": "warn,GATEWAY=info"})
    for line in proc.stderr:
        m = re.search(r"listening on http://(\S+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, m.group(1)
    raise SystemExit("the server did not start")


def request(conn, method, path, body=b""):
    conn.request(method, path, body=body, headers={"Content-Type": "text/plain"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def main():
    tmp = tempfile.mkdtemp(prefix="faas-soak-")
    proc, addr = start_server(tmp)
    try:
        sys.exit(soak(proc, addr))
    finally:
        # Whatever happened (an assertion, ^C), no server is left running.
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for_every_worker(ctl, fn):
    """Calls `fn` until every worker has answered it once: the workers are
    up and have the module, so the kills hit a warm platform."""
    workers = len(json.loads(request(ctl, "GET", "/stats")[1])["worker_pids"])
    served = set()
    deadline = time.time() + 60
    while len(served) < workers:
        if time.time() > deadline:
            raise SystemExit(f"only workers {sorted(served)} answered")
        status, body = request(ctl, "POST", f"/invoke?fn={fn}", b"warm")
        if status == 200:
            served.add(json.loads(body)["worker_id"])


def soak(proc, addr):
    """Runs the calls and the kills; returns the exit status."""
    host, port = addr.rsplit(":", 1)
    ctl = http.client.HTTPConnection(host, int(port), timeout=60)
    while request(ctl, "GET", "/health")[0] != 200:
        time.sleep(0.05)
    code = (ROOT / "examples" / "hello.c").read_bytes()
    status, body = request(ctl, "POST", "/deploy?name=soak&lang=c", code)
    assert status == 201, body
    wait_for_every_worker(ctl, "soak")

    next_call = iter(range(CALLS))
    lock = threading.Lock()
    statuses, latencies = Counter(), []

    def caller():
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        mine = []
        while True:
            with lock:
                i = next(next_call, None)
            if i is None:
                break
            t = time.perf_counter()
            try:
                status, _ = request(conn, "POST", "/invoke?fn=soak", str(i).encode())
            except (OSError, http.client.HTTPException):
                status = "socket error"
                conn = http.client.HTTPConnection(host, int(port), timeout=60)
            mine.append((status, time.perf_counter() - t))
        with lock:
            for status, lat in mine:
                statuses[status] += 1
                latencies.append(lat)

    log(f"{CALLS} calls at concurrency {CONCURRENCY}, kills at {KILLS} s")
    started = time.perf_counter()
    threads = [threading.Thread(target=caller) for _ in range(CONCURRENCY)]
    for t in threads:
        t.start()
    replacements = []
    for n, at in enumerate(KILLS):
        time.sleep(max(0.0, started + at - time.perf_counter()))
        worker = 1 if n % 2 == 0 else 3
        stats = json.loads(request(ctl, "GET", "/stats")[1])
        pid = stats["worker_pids"][worker]
        os.kill(pid, signal.SIGKILL)
        killed = time.perf_counter()
        while True:
            stats = json.loads(request(ctl, "GET", "/stats")[1])
            if stats["worker_pids"][worker] not in (0, pid) and stats["workers"][worker]["up"]:
                break
            time.sleep(0.005)
        replacements.append(time.perf_counter() - killed)
        log(f"killed worker {worker} (pid {pid}) at {at} s; replaced in {replacements[-1] * 1000:.0f} ms")
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    healthy = request(ctl, "GET", "/health")[0] == 200 and request(ctl, "POST", "/invoke?fn=soak", b"x")[0] == 200

    latencies.sort()
    pct = lambda p: latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000
    answered = sum(statuses.values())
    failed = answered - statuses[200]
    rows = [
        ("calls answered", f"{answered} of {CALLS}"),
        ("answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=str))),
        ("non-200 answers", f"{failed} (workers killed: {len(KILLS)})"),
        ("throughput", f"{answered / elapsed:,.0f} calls/s over {elapsed:.1f} s"),
        ("latency p50 / p99 / max", f"{pct(0.5):.2f} / {pct(0.99):.2f} / {latencies[-1] * 1000:.1f} ms"),
        ("worker replacement times", ", ".join(f"{r * 1000:.0f} ms" for r in replacements) or "-"),
        ("healthy afterwards", "yes" if healthy else "NO"),
    ]
    for name, value in rows:
        print(f"{name:<28} {value}")
    write_markdown(rows)
    ok = answered == CALLS and failed <= len(KILLS) and healthy
    return 0 if ok else 1


def write_markdown(rows):
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = (f"## Soak\n\nMeasured by `make soak` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): "
               f"{CALLS} calls of a C hello at concurrency {CONCURRENCY} over keep-alive connections "
               f"(Python client, same machine), a worker killed with SIGKILL at {', '.join(f'{k:g}' for k in KILLS)} s.\n\n"
               "| metric | value |\n|---|---|\n" + "".join(f"| {n} | {v} |\n" for n, v in rows))
    text = re.sub(r"\n## Soak\n.*?(?=\n## |\Z)", "", text, flags=re.S).rstrip("\n")
    path.write_text(text + "\n\n" + section)


if __name__ == "__main__":
    main()
