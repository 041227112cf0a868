#!/usr/bin/env python3
"""The benchmark of the reference server, in one command:

    python3 bench/run.py            # about 10 minutes on 2 cores

Builds the release server and the load tools, then on SQLite and on PostgreSQL + Redis:
start-up time and memory, and with wrk (installed from Debian when missing) `/health/`,
login, `GET auth/user/`, the conversation list, posting a message and the unread count;
signed Stripe webhooks processed end to end (payments-load, with a fake Stripe); chat
fan-out over WebSockets on one node and, with Redis, on two (chat-load). Every figure is
the median of RUNS runs (3). Writes the table, with the machine and commit, into
docs/performance.md (between the `bench:summary` markers) and a chart to
docs/performance-summary.svg; the raw results go to target/bench/results.json.

Loopback only. On a 2-core machine the server is pinned to CPU 1 and wrk to CPU 0.
Environment: PG_ADMIN (postgres://postgres@127.0.0.1:5432/postgres), REDIS_URL
(redis://127.0.0.1:6379), RUNS (3), SECONDS (5, per wrk run), QUICK=1 (1 run, 2 s: a
smoke test of the script, not figures to publish).
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = os.environ.get("QUICK") == "1"
RUNS = 1 if QUICK else int(os.environ.get("RUNS", "3"))
SECONDS = 2 if QUICK else int(os.environ.get("SECONDS", "5"))
PG_ADMIN = os.environ.get("PG_ADMIN", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
SERVER = os.path.join(ROOT, "target/release/saas-server")
CHAT_LOAD = os.path.join(ROOT, "target/release/chat-load")
PAYMENTS_LOAD = os.path.join(ROOT, "target/release/payments-load")
PASSWORD = "correct horse battery"
TWO_CORES = (os.cpu_count() or 1) >= 2
SERVER_CPU = ["taskset", "-c", "1"] if TWO_CORES else []
LOAD_CPU = ["taskset", "-c", "0"] if TWO_CORES else []

# wrk reports through this script: one JSON line per run (latency in microseconds).
WRK_REPORT = """
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format('WRK {"rps":%.1f,"p50_us":%d,"p99_us":%d,"errors":%d,"requests":%d}\\n',
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    errors, summary.requests))
end
"""


def log(message):
    print(message, file=sys.stderr, flush=True)


def sh(*args, **kwargs):
    return subprocess.run(list(args), check=True, **kwargs)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("content-type", "application/json")
    if token:
        request.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(total_kb / 1024 / 1024),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": commit.stdout.strip() or "unknown",
    }


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


class Backend:
    """A database (and maybe Redis) the servers of one series share."""

    def __init__(self, name, lab):
        self.name = name
        self.lab = lab
        self.database = None
        if name == "sqlite":
            self.env = {"DATABASE_URL": f"sqlite://{lab}/app.db?mode=rwc"}
        else:
            self.database = "bench_" + uuid.uuid4().hex[:12]
            sh("psql", PG_ADMIN, "-qc", f"CREATE DATABASE {self.database}", stdout=subprocess.DEVNULL)
            base = PG_ADMIN.rsplit("/", 1)[0]
            self.env = {
                "DATABASE_URL": f"{base}/{self.database}",
                "REDIS_URL": REDIS_URL,
                "REDIS_PREFIX": f"{self.database}:",
            }

    def drop(self):
        if self.database:
            subprocess.run(
                ["psql", PG_ADMIN, "-qc", f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


class Server:
    def __init__(self, backend, port=None, extra=None):
        self.port = port or free_port()
        self.env = dict(os.environ)
        self.env.update(
            {
                "DEBUG": "false",
                "SECRET_KEY": "bench-secret-key-0123456789abcdef",
                "RUST_LOG": "warn",
                "BIND_ADDR": f"127.0.0.1:{self.port}",
                "AUTH_RATE_LIMIT_PER_MINUTE": "1000000000",
                "JWT_ACCESS_TTL_SECONDS": "86400",
                "EMAIL_BACKEND": "file",
                "EMAIL_FILE_PATH": os.path.join(backend.lab, "emails"),
            }
        )
        self.env.update(backend.env)
        self.env.update(extra or {})
        self.process = None

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def migrate(self):
        sh(SERVER, "migrate", env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start(self):
        """Starts `serve`; returns the milliseconds from exec to the first 200 on /health/."""
        started = time.monotonic()
        self.process = subprocess.Popen(
            SERVER_CPU + [SERVER, "serve"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen(self.url("/health/"), timeout=1) as response:
                    if response.status == 200:
                        return (time.monotonic() - started) * 1000
            except OSError:
                time.sleep(0.002)
        raise RuntimeError("the server did not start")

    def stop(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def wrk(url, token=None, script=None):
    """RUNS wrk runs of SECONDS at 64 connections; the median run by requests per second."""
    runs = []
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write((script or "") + WRK_REPORT)
    try:
        for _ in range(RUNS):
            command = LOAD_CPU + ["wrk", "-t1", "-c64", f"-d{SECONDS}s", "-s", lua.name, url]
            if token:
                command[len(LOAD_CPU) + 1 : len(LOAD_CPU) + 1] = ["-H", f"Authorization: Bearer {token}"]
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            found = re.search(r"^WRK (.*)$", out, re.M)
            if not found:
                raise RuntimeError(f"wrk printed no report: {out}")
            run = json.loads(found.group(1))
            if run["errors"]:
                raise RuntimeError(f"{url}: {run['errors']} of {run['requests']} requests failed or were not 2xx")
            runs.append(run)
    finally:
        os.unlink(lua.name)
    runs.sort(key=lambda r: r["rps"])
    median = runs[len(runs) // 2]
    return {"rps": round(median["rps"]), "p50_ms": median["p50_us"] / 1000, "p99_ms": median["p99_us"] / 1000}


def post_script(body, path=None):
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"', f"wrk.body = {json.dumps(json.dumps(body))}"]
    if path:
        lines.append(f'wrk.path = "{path}"')
    return "\n".join(lines) + "\n"


def series(name):
    """Every measure on one backend."""
    log(f"== {name}")
    lab = tempfile.mkdtemp(prefix="saas-bench-")
    backend = Backend(name, lab)
    results = {}
    servers = []
    try:
        server = Server(backend)
        server.migrate()
        startups = []
        for _ in range(5):
            startups.append(server.start())
            server.stop()
        results["startup_ms"] = round(statistics.median(startups), 1)
        server.start()
        servers.append(server)
        time.sleep(2)
        results["idle_rss_mb"] = rss_mb(server.process.pid)

        user = http("POST", server.url("/api/v1/auth/registration/"), {"email": "bench@example.com", "password": PASSWORD})
        other = http("POST", server.url("/api/v1/auth/registration/"), {"email": "peer@example.com", "password": PASSWORD})
        token = user["access"]
        conversation = http(
            "POST",
            server.url("/api/v1/chat/conversations/"),
            {"conversation_type": "direct", "participant_ids": [other["user"]["id"]]},
            token,
        )
        messages = f"/api/v1/chat/conversations/{conversation['id']}/messages/"

        log("   http")
        results["health"] = wrk(server.url("/health/"))
        login = post_script({"email": "bench@example.com", "password": PASSWORD})
        results["login"] = wrk(server.url("/api/v1/auth/login/"), script=login)
        results["user"] = wrk(server.url("/api/v1/auth/user/"), token)
        results["conversations"] = wrk(server.url("/api/v1/chat/conversations/"), token)
        results["message_post"] = wrk(server.url(messages), token, post_script({"content": "benchmark message"}))
        results["unread_count"] = wrk(server.url("/api/v1/notifications/unread-count/"), token)
        results["rss_after_load_mb"] = rss_mb(server.process.pid)

        log("   websocket fan-out")
        nodes = [server]
        if backend.name != "sqlite":
            second = Server(backend)
            second.start()
            servers.append(second)
            nodes.append(second)
        for count in range(1, len(nodes) + 1):
            runs = []
            for _ in range(RUNS):
                command = LOAD_CPU + [
                    CHAT_LOAD, "fanout", "--clients", "100", "--senders", "10", "--rate", "100",
                    "--seconds", str(SECONDS), "--json",
                ]
                for node in nodes[:count]:
                    command += ["--node", node.url()]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                run = json.loads(out.strip().splitlines()[-1])
                if run["lost"] or run["duplicates"]:
                    raise RuntimeError(f"fan-out lost or duplicated messages: {run}")
                runs.append(run)
            runs.sort(key=lambda r: r["p99_ms"])
            median = runs[len(runs) // 2]
            results[f"fanout_{count}"] = {
                "rps": round(median["delivered_per_s"]),
                "p50_ms": median["p50_ms"],
                "p99_ms": median["p99_ms"],
            }
    finally:
        for server in servers:
            server.stop()
        backend.drop()
        shutil.rmtree(lab, ignore_errors=True)

    log("   webhooks")
    env = dict(os.environ)
    env.pop("SAAS_TEST_REDIS_URL", None)
    command = [PAYMENTS_LOAD, "--orders", "300" if QUICK else "2000", "--runs", str(RUNS), "--skip-balance"]
    if name == "sqlite":
        env.pop("SAAS_TEST_DATABASE_URL", None)
        command.append("--allow-sqlite")
    else:
        env["SAAS_TEST_DATABASE_URL"] = PG_ADMIN
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    rates = [float(m) for m in re.findall(r"processed_per_s=([0-9.]+)", out)]
    posts = [float(m) for m in re.findall(r"post_p50_ms=([0-9.]+)", out)]
    results["webhooks"] = {"rps": round(statistics.median(rates)), "p50_ms": statistics.median(posts), "p99_ms": None}
    return results


ROWS = [
    ("health", "`GET /health/` (database and job-store checks)", "req/s"),
    ("login", "`POST auth/login/` (argon2id verification)", "req/s"),
    ("user", "`GET auth/user/` (JWT)", "req/s"),
    ("conversations", "`GET chat/conversations/`", "req/s"),
    ("message_post", "`POST chat/conversations/{id}/messages/`", "req/s"),
    ("unread_count", "`GET notifications/unread-count/`", "req/s"),
    ("webhooks", "signed Stripe webhooks, processed end to end", "events/s"),
    ("fanout_1", "chat fan-out: 100 messages/s to 100 sockets, 1 node", "deliveries/s"),
    ("fanout_2", "chat fan-out: 100 messages/s to 100 sockets, 2 nodes (Redis)", "deliveries/s"),
]


def cell(result):
    if not result:
        return "—"
    text = f"**{result['rps']:,}**"
    if result.get("p50_ms") is not None:
        text += f", p50 {result['p50_ms']:.1f} ms"
    if result.get("p99_ms") is not None:
        text += f", p99 {result['p99_ms']:.1f} ms"
    return text


def table(report):
    m = report["machine"]
    lines = [
        f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; commit `{m['commit']}`, {m['date']}. "
        f"Medians of {report['runs']} runs of {report['seconds']} s; wrk with 64 connections"
        + (", pinned to CPU 0 with the server on CPU 1" if TWO_CORES else "")
        + "; webhook figures are the end-to-end processed rate (POST p50 shown).",
        "",
        "| measure | SQLite | PostgreSQL + Redis |",
        "|---|---|---|",
    ]
    s, p = report["sqlite"], report["postgres"]
    lines.append(f"| start-up, exec → first 200 on `/health/` | **{s['startup_ms']} ms** | **{p['startup_ms']} ms** |")
    lines.append(f"| RSS idle → after the HTTP load | {s['idle_rss_mb']} → {s['rss_after_load_mb']} MB "
                 f"| {p['idle_rss_mb']} → {p['rss_after_load_mb']} MB |")
    for key, label, unit in ROWS:
        lines.append(f"| {label} ({unit}) | {cell(s.get(key))} | {cell(p.get(key))} |")
    return "\n".join(lines)


def chart(report):
    """A horizontal bar chart (log scale) of every throughput, SQLite against PostgreSQL + Redis."""
    import math

    rows = [(label.replace("`", ""), unit, report["sqlite"].get(key), report["postgres"].get(key)) for key, label, unit in ROWS]
    top = max(r["rps"] for _, _, *pair in rows for r in pair if r)
    width, left, bar, gap = 980, 430, 11, 12
    height = 70 + len(rows) * (2 * bar + gap) + 30
    scale = (width - left - 90) / math.log10(max(top, 10) * 1.5)

    def length(value):
        return max(2.0, math.log10(max(value, 1)) * scale)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">saas-server throughput (log scale), {report["machine"]["date"]}, '
        f'{report["machine"]["cores"]} cores, commit {report["machine"]["commit"]}</text>',
        '<rect x="10" y="34" width="12" height="10" fill="#4e79a7"/><text x="28" y="43">SQLite</text>',
        '<rect x="90" y="34" width="12" height="10" fill="#f28e2b"/><text x="108" y="43">PostgreSQL + Redis</text>',
    ]
    y = 62
    for label, unit, sqlite, postgres in rows:
        out.append(f'<text x="10" y="{y + bar + 4}">{label} ({unit})</text>')
        for offset, result, colour in ((0, sqlite, "#4e79a7"), (bar, postgres, "#f28e2b")):
            if result:
                w = length(result["rps"])
                out.append(f'<rect x="{left}" y="{y + offset}" width="{w:.1f}" height="{bar - 1}" fill="{colour}"/>')
                out.append(f'<text x="{left + w + 4:.1f}" y="{y + offset + bar - 2}">{result["rps"]:,}</text>')
        y += 2 * bar + gap
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_docs(report):
    path = os.path.join(ROOT, "docs/performance.md")
    with open(path) as f:
        text = f.read()
    start, end = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"
    block = f"{start}\n{table(report)}\n\n![throughput chart](performance-summary.svg)\n{end}"
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        head, _, rest = text.partition("\n## ")
        text = f"{head}\n## Summary — `python3 bench/run.py`\n\n{block}\n\n## {rest}"
    with open(path, "w") as f:
        f.write(text)
    with open(os.path.join(ROOT, "docs/performance-summary.svg"), "w") as f:
        f.write(chart(report))


def main():
    if not shutil.which("wrk"):
        log("installing wrk")
        sh("apt-get", "update", "-qq")
        sh("apt-get", "install", "-y", "-qq", "wrk", stdout=subprocess.DEVNULL)
    log("building the release server and the load tools")
    sh("cargo", "build", "--release", "--locked", "-q", "-p", "saas-server", "-p", "saas-bench",
       "--bin", "saas-server", "--bin", "chat-load", "--bin", "payments-load", cwd=ROOT)
    report = {"machine": machine(), "runs": RUNS, "seconds": SECONDS}
    report["sqlite"] = series("sqlite")
    report["postgres"] = series("postgres")
    os.makedirs(os.path.join(ROOT, "target/bench"), exist_ok=True)
    with open(os.path.join(ROOT, "target/bench/results.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(table(report))
    if QUICK:
        log("QUICK=1: docs/performance.md left as it is")
    else:
        write_docs(report)
        log("written: docs/performance.md (summary), docs/performance-summary.svg")


if __name__ == "__main__":
    main()
