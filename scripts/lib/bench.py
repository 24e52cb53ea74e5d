#!/usr/bin/env python3
"""Wharf's benchmarks: each case runs Wharf and its baseline alternately on this machine
and prints medians and their ratio. Run it through scripts/bench, which installs the
baselines and builds Wharf in release mode first.

Every figure is checked before it counts: an upload not answered 2xx, a file missing
from the inbox or from the partner's endpoint, or a wrong size turns the case into FAIL.
"""

import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1024 * 1024

# Full and quick sizes of every case.
SIZES = {
    "full": dict(b1_requests=4000, b1_processes=3, b1_concurrency=4, b2_requests=20000, b2_concurrency=16,
                 big_bytes=1024 * MiB, b4_files=1000, b6_connections=1000, b7_partners=100_000,
                 b8_partners=1000, b8_scrapes=200, b9_refusals=3000, b9_slow=1000),
    "quick": dict(b1_requests=300, b1_processes=3, b1_concurrency=4, b2_requests=2000, b2_concurrency=16,
                  big_bytes=32 * MiB, b4_files=100, b6_connections=100, b7_partners=10_000,
                  b8_partners=1000, b8_scrapes=30, b9_refusals=300, b9_slow=100),
}
CASES = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "B10", "B11"]


class Failure(Exception):
    """A case lost or refused something: it reports FAIL with this reason."""


# MARK: processes

class Processes:
    """Everything the benchmark started, so that all of it is stopped at the end."""

    def __init__(self):
        self.running = []

    def start(self, argv, log, **kwargs):
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs)
        self.running.append(process)
        return process

    def stop(self, process, sig=signal.SIGTERM):
        if process.poll() is None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process in self.running:
            self.running.remove(process)

    def stop_all(self):
        # The last started first: Wharf before the database it is connected to.
        for process in reversed(list(self.running)):
            self.stop(process)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, what, timeout=60.0, process=None):
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise Failure(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not after {timeout:.0f} s")
        time.sleep(0.02)


def listening(port):
    def check():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False
    return check


def run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise Failure(f"{' '.join(map(str, argv[:3]))}... exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result.stdout


def proc_status(pid, field):
    """A size field of /proc/PID/status (VmRSS, VmHWM) in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise Failure(f"no {field} for process {pid}")


def open_descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def count_files(directory):
    return len(os.listdir(directory)) if os.path.isdir(directory) else 0


def empty_directory(directory):
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)


# MARK: the peers

class Wharf:
    """A Wharf home and, while it serves, its process."""

    def __init__(self, bench, home, binary=None, postgres=None, node=None):
        self.bench = bench
        self.home = home
        self.binary = binary or bench.wharf
        # The PostgreSQL server holding this home's registry (None: the embedded SQLite).
        self.postgres = postgres
        # This process's node name, for several nodes on one home.
        self.node = node
        self.process = None
        self.port = None
        self.admin_port = None

    def cli(self, *arguments):
        return run([self.binary, *arguments, "--home", self.home])

    def node_of(self, node):
        """Another node serving this same home."""
        return Wharf(self.bench, self.home, self.binary, self.postgres, node)

    def create(self):
        database = []
        if self.postgres:
            database = ["--database", self.postgres.url, "--database-password-file", self.postgres.password_file]
        self.cli("init", "--server-name", "127.0.0.1", "--server-name", "localhost", *database)
        self.cli("partner", "add", "bench", "--max-upload-size", "2G")
        self.cli("partner", "issue", "bench")
        bundle = f"{self.home}/partners/bench"
        # ab reads the certificate and its key from one file.
        with open(f"{self.home}/bench-client.pem", "w") as pem:
            pem.write(open(f"{bundle}/bench.crt").read() + open(f"{bundle}/bench.key").read())

    @property
    def client_pem(self):
        return f"{self.home}/bench-client.pem"

    @property
    def bundle(self):
        return f"{self.home}/partners/bench"

    def partner_context(self):
        """A TLS client context presenting partner `bench`'s certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(f"{self.bundle}/ca.crt")
        context.load_cert_chain(f"{self.bundle}/bench.crt", f"{self.bundle}/bench.key")
        return context

    @property
    def inbox(self):
        return f"{self.home}/spool/inbox/bench"

    def serve(self, *more):
        self.port = free_port()
        log = open(f"{self.home}/serve{'-' + self.node if self.node else ''}.log", "ab")
        extra = ["--node-name", self.node] if self.node else []
        options = run([self.binary, "serve", "--help"])
        # Each home's admin listener on a port of its own (builds before it have none).
        if "--admin-listen" in options:
            self.admin_port = free_port()
            extra += ["--admin-listen", f"127.0.0.1:{self.admin_port}"]
        # Every client here is 127.0.0.1, and B6 holds more connections than one address
        # may by default.
        if "--max-connections-per-address" in options:
            extra += ["--max-connections-per-address", "100000"]
        self.process = self.bench.processes.start(
            [self.binary, "serve", "--home", self.home, "--listen", f"127.0.0.1:{self.port}", *extra, *more], log)
        wait_until(listening(self.port), "wharf serve listens", process=self.process)
        return f"https://127.0.0.1:{self.port}"

    def stop(self):
        if self.process is not None:
            self.bench.processes.stop(self.process)
            if self.process.returncode not in (0, -signal.SIGTERM):
                raise Failure(f"wharf serve exited {self.process.returncode}; see {self.home}/serve*.log")
            self.process = None


class Postgres:
    """A PostgreSQL 15 server of the benchmark's own (Debian's `postgresql`), on a free
    loopback port, with its defaults for durability (fsync and synchronous_commit on, as
    SQLite's `synchronous = FULL`): initdb and the server run as `postgres`, which
    refuses to run as root. Wharf connects over TCP with a password; `psql` here through
    the directory's Unix socket as the superuser."""

    binaries = "/usr/lib/postgresql/15/bin"

    def __init__(self, bench):
        self.bench = bench
        self.directory = f"{bench.workdir}/postgres"
        self.port = free_port()
        self.password_file = f"{self.directory}/password"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/wharf"
        self.process = None
        os.makedirs(self.directory)
        with open(self.password_file, "w") as f:
            f.write(os.urandom(12).hex() + "\n")
        self.as_postgres = []
        if os.geteuid() == 0:
            # The work directory is root's (mode 0700): let `postgres` through to its own.
            os.chmod(bench.workdir, 0o711)
            shutil.chown(self.directory, "postgres", "postgres")
            shutil.chown(self.password_file, "postgres", "postgres")
            self.as_postgres = ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--"]
        log = open(f"{self.directory}/initdb.log", "wb")
        code = subprocess.run([*self.as_postgres, f"{self.binaries}/initdb", "-D", f"{self.directory}/data", "-U", "postgres",
                               "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={self.password_file}",
                               "--no-instructions"], stdout=log, stderr=log, stdin=subprocess.DEVNULL).returncode
        if code != 0:
            raise Failure(f"initdb exited {code}; see {self.directory}/initdb.log")

    def start(self):
        log = open(f"{self.directory}/server.log", "ab")
        self.process = self.bench.processes.start(
            [*self.as_postgres, f"{self.binaries}/postgres", "-D", f"{self.directory}/data", "-k", self.directory,
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1"], log)
        wait_until(listening(self.port), "PostgreSQL listens", process=self.process)
        wait_until(lambda: subprocess.run(self.psql_argv("postgres", "SELECT 1"), capture_output=True).returncode == 0,
                   "PostgreSQL accepts connections", process=self.process)
        self.psql("CREATE DATABASE wharf", database="postgres")

    def psql_argv(self, database, sql):
        return [f"{self.binaries}/psql", "-h", self.directory, "-p", str(self.port), "-U", "postgres", "-d", database,
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]

    def psql(self, sql, database="wharf"):
        return run(self.psql_argv(database, sql)).strip()

    def stop(self):
        if self.process is not None:
            self.bench.processes.stop(self.process, signal.SIGINT)
            self.process = None


class Nginx:
    """nginx as a partner's endpoint: mutual TLS against Wharf's CAs, DAV PUT to disk."""

    def __init__(self, bench, wharf):
        self.bench = bench
        self.prefix = f"{bench.workdir}/nginx"
        self.root = f"{self.prefix}/root"
        self.port = free_port()
        self.process = None
        os.makedirs(f"{self.root}/dav", exist_ok=True)
        os.makedirs(f"{self.root}/inbox", exist_ok=True)
        os.makedirs(f"{self.prefix}/body", exist_ok=True)
        pki = f"{wharf.home}/pki"
        # nginx plays both sides: the baseline of B1-B3 uploads with the partner's
        # certificate (partner CA), and B4-B5 deliver to it with Wharf's (identity CA).
        client_cas = f"{self.prefix}/client-cas.pem"
        with open(client_cas, "w") as out:
            for name in ("ca.crt", "identity-ca.crt"):
                with open(f"{pki}/{name}") as part:
                    out.write(part.read())
        user = "user root;" if os.geteuid() == 0 else ""
        with open(f"{self.prefix}/nginx.conf", "w") as conf:
            conf.write(f"""
{user}
worker_processes auto;
daemon off;
pid {self.prefix}/nginx.pid;
error_log {self.prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self.prefix}/body;
    proxy_temp_path {self.prefix}/body;
    fastcgi_temp_path {self.prefix}/body;
    uwsgi_temp_path {self.prefix}/body;
    scgi_temp_path {self.prefix}/body;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        ssl_certificate {pki}/server.crt;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {client_cas};
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 1000000;
        client_max_body_size 0;
        location / {{
            root {self.root};
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
""")

    def start(self):
        log = open(f"{self.prefix}/stdout.log", "ab")
        self.process = self.bench.processes.start(["nginx", "-p", self.prefix, "-c", f"{self.prefix}/nginx.conf"], log)
        wait_until(listening(self.port), "nginx listens", process=self.process)
        return f"https://127.0.0.1:{self.port}"

    def stop(self):
        if self.process is not None:
            self.bench.processes.stop(self.process, signal.SIGQUIT)
            self.process = None


# MARK: load generators

def ab_put(url, client_pem, body, requests, processes, concurrency, keepalive):
    """Runs `processes` ab processes at once; returns requests/s over the wall time of all.
    `url` may be a list of URLs (several nodes): the processes take them in turn."""
    urls = url if isinstance(url, list) else [url]
    per_process = requests // processes
    argv = ["ab", "-q", "-r", "-n", str(per_process), "-c", str(concurrency), "-E", client_pem,
            "-u", body, "-T", "application/octet-stream"]
    if keepalive:
        argv.append("-k")
    started = time.monotonic()
    runs = [subprocess.Popen(argv + [urls[i % len(urls)]], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(processes)]
    outputs = [(r.communicate(), r.returncode) for r in runs]
    elapsed = time.monotonic() - started
    for (stdout, stderr), code in outputs:
        if code != 0:
            raise Failure(f"ab exited {code}: {stderr.strip()[-300:]}")
        complete = int(re.search(r"Complete requests:\s+(\d+)", stdout).group(1))
        if complete != per_process:
            raise Failure(f"ab completed {complete} of {per_process} requests")
        failed = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: \d+, Exceptions: (\d+)\)", stdout)
        if failed and any(int(n) for n in failed.groups()):
            raise Failure(f"ab saw failed requests: {failed.group(0)}")
        non2xx = re.search(r"Non-2xx responses:\s+(\d+)", stdout)
        if non2xx:
            raise Failure(f"{non2xx.group(1)} responses were not 2xx")
        if re.search(r"Write errors:\s+[1-9]", stdout):
            raise Failure("ab saw write errors")
    return per_process * processes / elapsed, per_process * processes


def curl_tls(cert, key, cacert):
    return ["--cert", cert, "--key", key, "--cacert", cacert]


def settle_disk():
    """Writes back what earlier steps left dirty, so that a timed step does not share
    the disk with the writeback of files it did not write (nginx's last upload, say)."""
    os.sync()


def curl_put(url, source, tls, headers=()):
    """One `curl -T`; returns seconds and checks the answer was 2xx."""
    started = time.monotonic()
    extra = [item for header in headers for item in ("-H", header)]
    out = run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *tls, *extra, "-T", source, url])
    elapsed = time.monotonic() - started
    if not out.startswith("2"):
        raise Failure(f"curl -T {os.path.basename(source)} got HTTP {out}")
    return elapsed


# MARK: the benchmark

def copy_home(source, target):
    """A copy of home `source` at `target` without its spool and logs. The registry is
    copied with SQLite's online backup: the home's gateway may be writing it, and a copy of
    the file alone can catch a checkpoint half done (a malformed database)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("spool", "*.log", "wharf.sqlite*"))
    original = sqlite3.connect(f"{source}/wharf.sqlite")
    copy = sqlite3.connect(f"{target}/wharf.sqlite")
    with copy:
        original.backup(copy)
    original.close()
    copy.close()


def add_partners(db, partners):
    """Registers `partners` more partners in the registry `db`, each a copy of `bench` with
    its own name (`partner-000001`, ...) and a fingerprint identity of its own."""
    db.execute("""
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO partner (name, display_name, status, created_at, updated_at)
        SELECT printf('partner-%06d', i), printf('Partner %d', i), 'active', created_at, updated_at
        FROM n, (SELECT created_at, updated_at FROM partner WHERE name = 'bench')""", (partners,))
    window = db.execute("SELECT not_before, not_after FROM partner_identity WHERE partner = 'bench'").fetchone()
    db.executemany(
        "INSERT INTO partner_identity (partner, kind, value, match_key, not_before, not_after)"
        " VALUES (?, 'fingerprint', ?, ?, ?, ?)",
        ((f"partner-{i:06d}", fp, fp, *window) for i in range(1, partners + 1) for fp in [os.urandom(32).hex()]))


class Bench:
    def __init__(self, options):
        self.options = options
        self.sizes = SIZES["quick" if options.quick else "full"]
        self.runs = options.runs
        self.wharf = os.path.abspath(options.wharf)
        # Another build of Wharf to compare with, case by case, instead of nginx and curl.
        self.against = os.path.abspath(options.against) if options.against else None
        self.processes = Processes()
        self.workdir = tempfile.mkdtemp(prefix="wharf-bench-", dir=options.workdir)
        self.rows = []
        self.set_aside_count = 0

    def set_aside(self, directory):
        """Moves a directory of small files out of the way between runs.

        Deleting thousands of files at once makes ext4 without a journal (this machine's)
        skip the freed inodes when it allocates new ones, for 60 s and up to 360 s (its
        `recently_deleted` check), which slowed the next run's file creation several
        times over. Moving them costs one rename; the work directory, with them, is
        removed at the end.
        """
        if os.path.isdir(directory):
            self.set_aside_count += 1
            os.makedirs(f"{self.workdir}/set-aside", exist_ok=True)
            os.rename(directory, f"{self.workdir}/set-aside/{self.set_aside_count}")
            os.makedirs(directory)

    def log(self, text):
        print(text, file=sys.stderr, flush=True)

    def alternate(self, wharf_run, baseline_run):
        """Runs Wharf, then the baseline, `runs` times; returns both medians."""
        wharf, baseline = [], []
        for _ in range(self.runs):
            wharf.append(wharf_run())
            baseline.append(baseline_run())
        self.log(f"    wharf {['%.4g' % v for v in wharf]}  baseline {['%.4g' % v for v in baseline]}")
        return statistics.median(wharf), statistics.median(baseline)

    def add(self, case, what, wharf, baseline, ratio, target, meets, unit):
        self.rows.append(dict(case=case, what=what, wharf=wharf, baseline=baseline, ratio=ratio,
                              target=target, meets=meets, unit=unit))

    def fail(self, case, what, reason):
        self.rows.append(dict(case=case, what=what, fail=reason))

    # Fixtures

    def setup(self):
        self.log(f"work directory {self.workdir}")
        self.home = Wharf(self, f"{self.workdir}/home")
        self.home.create()
        pki = f"{self.home.home}/pki"
        self.nginx = Nginx(self, self.home)
        self.nginx_url = self.nginx.start()
        # Wharf delivers to nginx with its own client certificate, as curl does.
        self.home.cli("partner", "add", "nginx", "--url", f"{self.nginx_url}/dav/", "--server-ca", f"{pki}/identity-ca.crt",
                      "--max-deliveries", "8")
        self.partner_tls = curl_tls(f"{self.home.bundle}/bench.crt", f"{self.home.bundle}/bench.key", f"{self.home.bundle}/ca.crt")
        self.wharf_tls = curl_tls(f"{pki}/client.crt", f"{pki}/client.key", f"{pki}/identity-ca.crt")
        self.small = f"{self.workdir}/small.bin"
        with open(self.small, "wb") as f:
            f.write(os.urandom(1024))
        if self.against:
            # The other build's home delivers to the same nginx with the first home's client
            # certificate, which nginx trusts.
            self.other = Wharf(self, f"{self.workdir}/home-against", binary=self.against)
            self.other.create()
            self.other.cli("partner", "add", "nginx", "--url", f"{self.nginx_url}/dav/", "--server-ca", f"{pki}/identity-ca.crt",
                           "--client-cert", f"{pki}/client.crt", "--client-key", f"{pki}/client.key", "--max-deliveries", "8")

    def big_file(self):
        path = f"{self.workdir}/big.bin"
        if not os.path.exists(path):
            digest = hashlib.sha256()
            with open(path, "wb") as f:
                for _ in range(self.sizes["big_bytes"] // MiB):
                    chunk = os.urandom(MiB)
                    digest.update(chunk)
                    f.write(chunk)
            self.big_sha256 = digest.hexdigest()
        return path

    # Cases

    def b1_rate(self, wharf, url, processes=None, concurrency=None):
        """One B1 run against a serving Wharf (or its nodes, if `url` is a list, each ab
        process taking the next): uploads/s, checked against its inbox."""
        s = self.sizes
        def one():
            self.set_aside(wharf.inbox)
            urls = [f"{u}/inbox/b1.bin" for u in (url if isinstance(url, list) else [url])]
            rate, sent = ab_put(urls, wharf.client_pem, self.small, s["b1_requests"],
                                processes or s["b1_processes"], concurrency or s["b1_concurrency"], keepalive=False)
            stored = count_files(wharf.inbox)
            if stored != sent:
                raise Failure(f"{sent} uploads answered 2xx but {stored} files are in the inbox")
            return rate
        return one

    def nginx_rate(self, keepalive):
        s = self.sizes
        def one():
            if keepalive:
                rate, _ = ab_put(f"{self.nginx_url}/inbox/b2.bin", self.home.client_pem, self.small,
                                 s["b2_requests"], 1, s["b2_concurrency"], keepalive=True)
            else:
                rate, _ = ab_put(f"{self.nginx_url}/inbox/b1.bin", self.home.client_pem, self.small,
                                 s["b1_requests"], s["b1_processes"], s["b1_concurrency"], keepalive=False)
            if not os.path.exists(f"{self.nginx.root}/inbox/{'b2' if keepalive else 'b1'}.bin"):
                raise Failure("nginx did not store the upload")
            return rate
        return one

    def case_b1(self):
        s = self.sizes
        what = f"new mTLS connection per 1 KiB PUT ({s['b1_processes']} ab × -c {s['b1_concurrency']})"
        url = self.home.serve()
        try:
            w, n = self.alternate(self.b1_rate(self.home, url), self.nginx_rate(keepalive=False))
        finally:
            self.home.stop()
        self.add("B1", what, w, n, w / n, "≥ 1.0× nginx", w / n >= 1.0, "uploads/s")

    def b2_rate(self, wharf, url, processes=None, concurrency=None):
        """One B2 run against a serving Wharf (or its nodes, as B1): keep-alive uploads/s,
        checked against its inbox."""
        s = self.sizes
        def one():
            self.set_aside(wharf.inbox)
            urls = [f"{u}/inbox/b2.bin" for u in (url if isinstance(url, list) else [url])]
            rate, sent = ab_put(urls, wharf.client_pem, self.small, s["b2_requests"], processes or 1,
                                concurrency or s["b2_concurrency"], keepalive=True)
            stored = count_files(wharf.inbox)
            if stored != sent:
                raise Failure(f"{sent} uploads answered 2xx but {stored} files are in the inbox")
            return rate
        return one

    def case_b2(self):
        s = self.sizes
        what = f"keep-alive 1 KiB PUTs, {s['b2_concurrency']} connections (ab -k)"
        url = self.home.serve()
        try:
            w, n = self.alternate(self.b2_rate(self.home, url), self.nginx_rate(keepalive=True))
        finally:
            self.home.stop()
        self.add("B2", what, w, n, w / n, "≥ 1.0× nginx", w / n >= 1.0, "uploads/s")

    def case_b3(self):
        big = self.big_file()
        size = os.path.getsize(big)
        label = f"{size // MiB} MiB"
        url = self.home.serve()
        try:
            def wharf_one():
                empty_directory(self.home.inbox)
                seconds = curl_put(f"{url}/inbox/big.bin", big, self.partner_tls)
                stored = [f for f in os.listdir(self.home.inbox)]
                if len(stored) != 1 or os.path.getsize(f"{self.home.inbox}/{stored[0]}") != size:
                    raise Failure("the inbox does not hold the whole upload")
                receipt = sqlite3.connect(f"{self.home.home}/wharf.sqlite").execute(
                    "SELECT sha256 FROM receipt ORDER BY received_at DESC LIMIT 1").fetchone()[0]
                if receipt != self.big_sha256:
                    raise Failure("the receipt's SHA-256 is not the file's")
                empty_directory(self.home.inbox)
                return size / seconds / 1e6

            def nginx_one():
                seconds = curl_put(f"{self.nginx_url}/inbox/big.bin", big, self.partner_tls)
                if os.path.getsize(f"{self.nginx.root}/inbox/big.bin") != size:
                    raise Failure("nginx stored a file of the wrong size")
                os.unlink(f"{self.nginx.root}/inbox/big.bin")
                return size / seconds / 1e6

            w, n = self.alternate(wharf_one, nginx_one)
            peak = proc_status(self.home.process.pid, "VmHWM")
        finally:
            self.home.stop()

        def dd_one():
            target = f"{self.workdir}/dd.bin"
            started = time.monotonic()
            run(["dd", "if=/dev/zero", f"of={target}", "bs=1M", f"count={size // MiB}", "conv=fdatasync"])
            seconds = time.monotonic() - started
            os.unlink(target)
            return size / seconds / 1e6
        d = statistics.median([dd_one() for _ in range(self.runs)])
        self.add("B3", f"one {label} upload with curl", w, n, w / n, "≥ 1.1× nginx", w / n >= 1.1, "MB/s")
        self.add("B3", f"the same, against the disk (dd conv=fdatasync)", w, d, w / d, "≥ 0.8× dd", w / d >= 0.8, "MB/s")
        self.add("B3", "Wharf's peak RSS during the uploads", peak / MiB, None, None, "≤ 64 MiB", peak <= 64 * MiB, "MiB")

    def deliver_all(self, expected, names, size, wharf=None, nodes=1):
        """Times `wharf deliver --once` (`nodes` of them at once, each a node of its own
        name) and checks every file arrived whole at nginx."""
        wharf = wharf or self.home
        argv = [wharf.binary, "deliver", "--once", "--home", wharf.home]
        started = time.monotonic()
        if nodes == 1:
            run(argv)
        else:
            runs = [subprocess.Popen(argv + ["--node-name", f"deliver-{i + 1}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True) for i in range(nodes)]
            for r in runs:
                _, stderr = r.communicate()
                if r.returncode != 0:
                    raise Failure(f"wharf deliver --once exited {r.returncode}: {stderr.strip()[-500:]}")
        seconds = time.monotonic() - started
        dav = f"{self.nginx.root}/dav"
        arrived = [n for n in names if os.path.exists(f"{dav}/{n}") and os.path.getsize(f"{dav}/{n}") == size]
        if len(arrived) != expected:
            raise Failure(f"{len(arrived)} of {expected} files arrived whole at nginx")
        self.check_delivered(wharf)
        return seconds

    def check_delivered(self, wharf, partner=None):
        """Fails the case unless every transfer (of `partner`, if given) is delivered."""
        query = "SELECT count(*) FROM transfer WHERE state != 'delivered'" + (" AND partner = ?" if partner else "")
        if wharf.postgres:
            if partner:
                raise Failure("check_delivered cannot select a partner on PostgreSQL")
            pending = int(wharf.postgres.psql(query))
        else:
            pending = sqlite3.connect(f"{wharf.home}/wharf.sqlite").execute(query, (partner,) if partner else ()).fetchone()[0]
        if pending:
            raise Failure(f"{pending} transfers are not delivered")

    def b4_files(self):
        count = self.sizes["b4_files"]
        source = f"{self.workdir}/b4"
        names = [f"file-{i:05d}.bin" for i in range(count)]
        if not os.path.isdir(source):
            os.makedirs(source)
            for name in names:
                with open(f"{source}/{name}", "wb") as f:
                    f.write(os.urandom(1024))
        return source, names

    def b4_run(self, wharf, nodes=1):
        """One B4 run: queue the files with `wharf send`, time `wharf deliver --once`
        (on `nodes` nodes at once)."""
        source, names = self.b4_files()
        def one():
            self.set_aside(f"{self.nginx.root}/dav")
            self.set_aside(f"{wharf.home}/spool/sent")
            wharf.cli("send", "nginx", *[f"{source}/{n}" for n in names])
            return self.deliver_all(len(names), names, 1024, wharf, nodes)
        return one

    def case_b4(self):
        source, names = self.b4_files()
        count = len(names)
        dav = f"{self.nginx.root}/dav"
        wharf_one = self.b4_run(self.home)

        def curl_one():
            self.set_aside(dav)
            config = f"{self.workdir}/b4.curl"
            with open(config, "w") as f:
                for name in names:
                    f.write(f'upload-file = "{source}/{name}"\nurl = "{self.nginx_url}/dav/{name}"\n'
                            'output = "/dev/null"\n')
            started = time.monotonic()
            out = run(["curl", "-sS", "--parallel", "--parallel-max", "8", *self.wharf_tls,
                       "-w", "%{http_code}\n", "-K", config])
            seconds = time.monotonic() - started
            codes = out.split()
            if len(codes) != count or any(not c.startswith("2") for c in codes):
                raise Failure("curl's uploads were not all answered 2xx")
            return seconds

        w, c = self.alternate(wharf_one, curl_one)
        self.add("B4", f"deliver {count} queued 1 KiB files to nginx", count / w, count / c, c / w,
                 "≥ 1.0× curl --parallel-max 8", c / w >= 1.0, "files/s")

    def b10_run(self, wharf, url):
        """One B10 run: B4's files queued for pull partner `puller` (untimed), then listed,
        fetched and acknowledged by curl, 8 at a time as B4's curl, each checked against
        the listing's SHA-256 and every transfer delivered."""
        source, names = self.b4_files()
        bundle = f"{wharf.home}/partners/puller"
        tls = curl_tls(f"{bundle}/puller.crt", f"{bundle}/puller.key", f"{bundle}/ca.crt")
        fetched = f"{self.workdir}/b10"

        def one():
            wharf.cli("send", "puller", *[f"{source}/{n}" for n in names])
            self.set_aside(fetched)
            os.makedirs(fetched, exist_ok=True)
            started = time.monotonic()
            files = []
            after = None
            while True:
                page = json.loads(run(["curl", "-sS", "--fail", *tls,
                                       f"{url}/outbox?limit=1000" + (f"&after={after}" if after else "")]))["files"]
                files += page
                if len(page) < 1000:
                    break
                after = page[-1]["id"]
            if len(files) != len(names):
                raise Failure(f"the outbox lists {len(files)} files, not {len(names)}")
            for action, lines in (("fetch", [f'url = "{url}/outbox/{f["id"]}"\noutput = "{fetched}/{f["id"]}"\n' for f in files]),
                                  ("acknowledge", [f'url = "{url}/outbox/{f["id"]}"\noutput = "/dev/null"\n' for f in files])):
                config = f"{self.workdir}/b10-{action}.curl"
                with open(config, "w") as f:
                    f.writelines(lines)
                method = ["-X", "DELETE"] if action == "acknowledge" else []
                codes = run(["curl", "-sS", "--parallel", "--parallel-max", "8", *tls, *method,
                             "-w", "%{http_code}\n", "-K", config]).split()
                if len(codes) != len(files) or any(c != "200" for c in codes):
                    raise Failure(f"curl's {action} requests were not all answered 200")
            seconds = time.monotonic() - started
            for f in files:
                with open(f"{fetched}/{f['id']}", "rb") as data:
                    if hashlib.sha256(data.read()).hexdigest() != f["sha256"]:
                        raise Failure(f"{f['id']} was fetched with another SHA-256")
            self.check_delivered(wharf, "puller")
            return seconds
        return one

    def case_b10(self):
        count = len(self.b4_files()[1])
        pull = Wharf(self, f"{self.workdir}/home-pull")
        pull.create()
        pull.cli("partner", "add", "puller", "--delivery", "pull")
        pull.cli("partner", "issue", "puller")
        # The pull home serves while the first home's B4 runs `wharf deliver --once`.
        url = pull.serve()
        try:
            w, p = self.alternate(self.b10_run(pull, url), self.b4_run(self.home))
        finally:
            pull.stop()
        self.add("B10", f"{count} queued 1 KiB files fetched and acknowledged by curl (pull), against B4's push", count / w,
                 count / p, p / w, "—", None, "files/s")

    def case_b11(self):
        """B3's file sent as a resumable upload (`Upload-Complete: ?1`: announced with a 104,
        its bytes kept in spool/partial/ and hashed again from the disk at completion),
        against the same file as a plain PUT, alternately on one gateway."""
        big = self.big_file()
        size = os.path.getsize(big)
        url = self.home.serve()

        def upload(headers):
            def one():
                empty_directory(self.home.inbox)
                seconds = curl_put(f"{url}/inbox/big.bin", big, self.partner_tls, headers)
                stored = os.listdir(self.home.inbox)
                if len(stored) != 1 or os.path.getsize(f"{self.home.inbox}/{stored[0]}") != size:
                    raise Failure("the inbox does not hold the whole upload")
                if os.listdir(f"{self.home.home}/spool/partial"):
                    raise Failure("a completed resumable upload left its bytes in spool/partial/")
                empty_directory(self.home.inbox)
                return size / seconds / 1e6
            return one
        try:
            r, p = self.alternate(upload(["Upload-Complete: ?1", f"Upload-Length: {size}"]), upload([]))
        finally:
            self.home.stop()
        self.add("B11", f"one {size // MiB} MiB resumable upload with curl, against a plain PUT", r, p, r / p,
                 "≥ 0.8× plain", r / p >= 0.8, "MB/s")

    def case_b5(self):
        big = self.big_file()
        size = os.path.getsize(big)
        dav = f"{self.nginx.root}/dav"

        def wharf_one():
            empty_directory(dav)
            empty_directory(f"{self.home.home}/spool/sent")
            self.home.cli("send", "nginx", big)
            settle_disk()
            seconds = self.deliver_all(1, ["big.bin"], size)
            return size / seconds / 1e6

        def curl_one():
            empty_directory(dav)
            settle_disk()
            seconds = curl_put(f"{self.nginx_url}/dav/big.bin", big, self.wharf_tls)
            if os.path.getsize(f"{dav}/big.bin") != size:
                raise Failure("nginx stored a file of the wrong size")
            return size / seconds / 1e6

        w, c = self.alternate(wharf_one, curl_one)
        empty_directory(dav)
        empty_directory(f"{self.home.home}/spool/sent")
        self.add("B5", f"deliver one {size // MiB} MiB file to nginx", w, c, w / c, "≥ 0.95× curl -T", w / c >= 0.95, "MB/s")

    def case_b6(self):
        count = self.sizes["b6_connections"]
        self.home.serve()
        pid = self.home.process.pid
        sockets = []
        try:
            # Idle: listening, nothing connected; let start-up allocations settle first.
            time.sleep(1.0)
            idle = proc_status(pid, "VmRSS")
            idle_anonymous = proc_status(pid, "RssAnon")
            context = self.home.partner_context()
            descriptors = lambda: open_descriptors(pid)
            before = descriptors()
            for _ in range(count):
                raw = socket.create_connection(("127.0.0.1", self.home.port))
                sockets.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
            # The server finishes its side of each handshake after the client: wait until it holds them all.
            wait_until(lambda: descriptors() >= before + count, f"Wharf holds {count} connections", timeout=60)
            held = proc_status(pid, "VmRSS")
            alive = 0
            for s in sockets:
                s.setblocking(False)
                try:
                    alive += 1 if s.recv(1) else 0
                except ssl.SSLWantReadError:
                    alive += 1
                except OSError:
                    pass
            if alive != count:
                raise Failure(f"{count - alive} of {count} connections were closed")
        finally:
            for s in sockets:
                s.close()
            self.home.stop()
        self.add("B6", "RSS idle", idle / MiB, None, None, "≤ 30 MiB", idle <= 30 * MiB, "MiB")
        # The rest of RSS is the binary's code and data mapped from the page cache (shared).
        self.add("B6", "of which anonymous (heap, stacks)", idle_anonymous / MiB, None, None, "—", None, "MiB")
        self.add("B6", f"RSS with {count} idle mTLS connections", held / MiB, None, None, "≤ 128 MiB",
                 held <= 128 * MiB, "MiB")

    def case_b7(self):
        partners = self.sizes["b7_partners"]
        large = Wharf(self, f"{self.workdir}/home-large")
        copy_home(self.home.home, large.home)
        self.log(f"    registering {partners} more partners")
        db = sqlite3.connect(f"{large.home}/wharf.sqlite")
        with db:
            add_partners(db, partners)
        total = db.execute("SELECT count(*) FROM partner").fetchone()[0]
        db.close()
        if total < partners + 1:
            raise Failure(f"the registry holds {total} partners")
        what = f"B1 with {total:,} partners registered, against B1 with {total - partners}"
        small_one = self.b1_rate(self.home, self.home.serve())
        try:
            large_one = self.b1_rate(large, large.serve())
            try:
                w, b = self.alternate(large_one, small_one)
            finally:
                large.stop()
        finally:
            self.home.stop()
        self.add("B7", what, w, b, w / b, "≥ 0.95×", w / b >= 0.95, "uploads/s")

    def scrape_time(self, wharf, path, count):
        """Returns a function that times `count` GETs of `path` on the admin listener (one
        connection each, as Prometheus' scrapes are apart) and gives milliseconds per GET."""
        import http.client

        def measure():
            started = time.monotonic()
            for _ in range(count):
                connection = http.client.HTTPConnection("127.0.0.1", wharf.admin_port, timeout=30)
                connection.request("GET", path)
                response = connection.getresponse()
                body = response.read()
                connection.close()
                if response.status != 200 or (path == "/metrics" and b"wharf_build_info" not in body):
                    raise Failure(f"GET {path} answered {response.status}")
            return (time.monotonic() - started) * 1000 / count
        return measure

    def case_b8(self):
        partners, scrapes = self.sizes["b8_partners"], self.sizes["b8_scrapes"]
        large = Wharf(self, f"{self.workdir}/home-metrics")
        copy_home(self.home.home, large.home)
        # Partners as in B7, with ten finished transfers each (states the worker leaves alone).
        db = sqlite3.connect(f"{large.home}/wharf.sqlite")
        with db:
            add_partners(db, partners)
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.000")
            db.executemany(
                "INSERT INTO transfer (id, partner, filename, size, sha256, state, created_at, queued_at, delivered_at)"
                " VALUES (?, ?, 'file.xml', 1024, ?, ?, ?, ?, ?)",
                ((f"t-{i:06d}-{k}", f"partner-{i:06d}", "0" * 64, state, now, now, now if state == "delivered" else None)
                 for i in range(1, partners + 1) for k in range(10)
                 for state in ["delivered" if k < 8 else ("dead" if k == 8 else "cancelled")]))
        db.close()
        self.home.serve()
        try:
            large.serve()
            try:
                w, b = self.alternate(self.scrape_time(large, "/metrics", scrapes), self.scrape_time(self.home, "/metrics", scrapes))
                h, _ = self.alternate(self.scrape_time(large, "/healthz", scrapes), lambda: 0.0)
            finally:
                large.stop()
        finally:
            self.home.stop()
        self.add("B8", f"GET /metrics with {partners + 1:,} partners, against 1 partner", w, b, w / b, "—", None, "ms")
        self.add("B8", f"GET /metrics with {partners + 1:,} partners, against GET /healthz", w, h, w / h, "—", None, "ms")

    def refused_connections(self, wharf, count, source):
        """`count` TLS connections without a client certificate from `source`, one after
        another; returns refused connections per second. Each must be refused: by the
        handshake, or closed at accept once the address is banned."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(f"{wharf.bundle}/ca.crt")
        started = time.monotonic()
        for _ in range(count):
            raw = socket.create_connection(("127.0.0.1", wharf.port), source_address=(source, 0), timeout=30)
            try:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(b"GET /inbox HTTP/1.1\r\nHost: x\r\n\r\n")
                    if tls.recv(1):
                        raise Failure("a connection without a client certificate was answered")
            except (ssl.SSLError, ConnectionError, OSError):
                pass
            finally:
                raw.close()
        return count / (time.monotonic() - started)

    def registry_bytes(self, wharf):
        db = sqlite3.connect(f"{wharf.home}/wharf.sqlite")
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            pages, size = db.execute("PRAGMA page_count").fetchone()[0], db.execute("PRAGMA page_size").fetchone()[0]
            rows = db.execute("SELECT count(*) FROM audit_event").fetchone()[0]
            return pages * size, rows
        finally:
            db.close()

    def case_b9(self):
        count, slow = self.sizes["b9_refusals"], self.sizes["b9_slow"]
        # Refused connections per second from one attacker, defender on (banned after the
        # eighth, then closed at accept) against off (every one a refused handshake).
        sources = iter(f"127.0.{i // 250}.{2 + i % 250}" for i in range(10_000))
        def attack(*flags):
            def one():
                self.home.serve(*flags)
                try:
                    return self.refused_connections(self.home, count, next(sources))
                finally:
                    self.home.stop()
            return one
        w, b = self.alternate(attack(), attack("--defender", "off"))
        self.add("B9", f"{count} connections without a certificate from one address, defender on against off", w, b, w / b,
                 "≥ 1.0×", w / b >= 1.0, "refusals/s")

        # The registry's growth for refused connections (defender off: every one refused
        # at the handshake), written in batches.
        self.home.serve("--defender", "off")
        before, rows_before = self.registry_bytes(self.home)
        try:
            self.refused_connections(self.home, count, "127.0.200.2")
        finally:
            self.home.stop()
        after, rows_after = self.registry_bytes(self.home)
        per = 10_000 / count
        self.add("B9", f"audit rows per 10,000 refused connections (the registry grew {max(0, after - before) / 1024:.0f} KiB for {count})",
                 (rows_after - rows_before) * per, None, None, "—", None, "rows")

        # Resident memory with slow uploads held open (a head and 1 KiB of a 1 MiB body
        # each), against the same server idle.
        self.home.serve()
        pid = self.home.process.pid
        sockets = []
        try:
            time.sleep(1.0)
            idle = proc_status(pid, "VmRSS")
            context = self.home.partner_context()
            # A small part of a body stays in the connection's write buffer: count descriptors.
            descriptors = lambda: open_descriptors(pid)
            before = descriptors()
            for i in range(slow):
                raw = socket.create_connection(("127.0.0.1", self.home.port), source_address=("127.0.201.2", 0))
                tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
                tls.sendall(f"PUT /inbox/slow-{i}.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {MiB}\r\n\r\n".encode() + os.urandom(1024))
                sockets.append(tls)
            wait_until(lambda: descriptors() >= before + slow, f"Wharf holds {slow} slow uploads", timeout=120)
            held = proc_status(pid, "VmRSS")
        finally:
            for s in sockets:
                s.close()
            self.home.stop()
        self.add("B9", f"RSS with {slow} slow uploads open, against idle", held / MiB, idle / MiB, held / idle, "—", None, "MiB")

    # Report

    def machine(self):
        cpu = "unknown CPU"
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
        curl = run(["curl", "--version"]).split()[1]
        return (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} × {cpu} · "
                f"Linux {platform.release()} · nginx {nginx}, curl {curl}"
                + (f", PostgreSQL {run([f'{Postgres.binaries}/postgres', '--version']).split()[2]}" if self.options.postgres else "")
                + " · "
                f"{'quick' if self.options.quick else 'full'} sizes, {self.runs} runs each, medians")

    def table(self):
        lines = ["| case | what | Wharf | baseline | ratio | target | |", "|---|---|---|---|---|---|---|"]
        for row in self.rows:
            if "fail" in row:
                lines.append(f"| {row['case']} | {row['what']} | FAIL | | | | {row['fail']} |")
                continue
            unit = row["unit"]
            baseline = "—" if row["baseline"] is None else f"{row['baseline']:,.1f} {unit}"
            ratio = "—" if row["ratio"] is None else f"{row['ratio']:.2f}×"
            verdict = "—" if row["meets"] is None else ("meets" if row["meets"] else "below")
            lines.append(f"| {row['case']} | {row['what']} | {row['wharf']:,.1f} {unit} | {baseline} | {ratio} | "
                         f"{row['target']} | {verdict} |")
        return "\n".join(lines)

    # Another build as the baseline

    def against_case(self, case):
        """`case` run with this build and the `--against` build alternately; the ratio is
        this build's figure over the other's (higher is better for both rates)."""
        if case == "B4":
            w, o = self.alternate(self.b4_run(self.home), self.b4_run(self.other))
            count = len(self.b4_files()[1])
            w, o = count / w, count / o
            what, unit = f"deliver {count} queued 1 KiB files to nginx", "files/s"
        elif case in ("B1", "B2"):
            rate = self.b1_rate if case == "B1" else self.b2_rate
            url, other_url = self.home.serve(), self.other.serve()
            try:
                w, o = self.alternate(rate(self.home, url), rate(self.other, other_url))
            finally:
                self.home.stop()
                self.other.stop()
            what = "new mTLS connection per 1 KiB PUT" if case == "B1" else "keep-alive 1 KiB PUTs"
            unit = "uploads/s"
        else:
            raise Failure(f"{case} has no comparison with another build; --against runs B1, B2 and B4")
        self.add(case, what, w, o, w / o, "≥ 0.95× the other build", w / o >= 0.95, unit)

    # The registry on PostgreSQL

    def setup_postgres(self):
        """A PostgreSQL server and a home whose registry it holds, served as node `n1`;
        it delivers to the same nginx with the first home's client certificate."""
        self.postgres = Postgres(self)
        self.postgres.start()
        self.shared = Wharf(self, f"{self.workdir}/home-postgres", postgres=self.postgres, node="n1")
        self.shared.create()
        pki = f"{self.home.home}/pki"
        self.shared.cli("partner", "add", "nginx", "--url", f"{self.nginx_url}/dav/", "--server-ca", f"{pki}/identity-ca.crt",
                        "--client-cert", f"{pki}/client.crt", "--client-key", f"{pki}/client.key", "--max-deliveries", "8")

    def postgres_case(self, case):
        """`case` with the registry on PostgreSQL against the same on SQLite (this build,
        alternately), then two nodes on PostgreSQL against one."""
        s = self.sizes
        count = len(self.b4_files()[1])
        if case == "B4":
            p, q = self.alternate(self.b4_run(self.shared), self.b4_run(self.home))
            self.add(case, f"deliver {count} queued 1 KiB files to nginx, registry on PostgreSQL against SQLite",
                     count / p, count / q, q / p, "≥ 0.8× SQLite", q / p >= 0.8, "files/s")
            two, one = self.alternate(self.b4_run(self.shared, nodes=2), self.b4_run(self.shared))
            self.add(case, "the same on PostgreSQL, two `deliver --once` nodes at once against one "
                     "(max-deliveries 8 holds across both)", count / two, count / one, one / two,
                     "≥ 1.0× one node", one / two >= 1.0, "files/s")
            return
        if case not in ("B1", "B2"):
            raise Failure(f"{case} has no PostgreSQL comparison; --postgres runs B1, B2 and B4")
        rate = self.b1_rate if case == "B1" else self.b2_rate
        what = "new mTLS connection per 1 KiB PUT" if case == "B1" else "keep-alive 1 KiB PUTs"
        url, shared_url = self.home.serve(), self.shared.serve()
        try:
            p, q = self.alternate(rate(self.shared, shared_url), rate(self.home, url))
        finally:
            self.home.stop()
        self.add(case, f"{what}, registry on PostgreSQL against SQLite", p, q, p / q,
                 "≥ 0.8× SQLite" if case == "B1" else "—", p / q >= 0.8 if case == "B1" else None, "uploads/s")
        # The same connections split over two nodes, against all of them on one; the
        # second node runs only for its runs. B1's 3 × 4 connections become 4 × 3 (2 ab
        # processes a node), B2's 16 connections 2 × 8.
        processes, concurrency = (4, 3) if case == "B1" else (2, s["b2_concurrency"] // 2)
        second = self.shared.node_of("n2")
        def two_nodes():
            second_url = second.serve()
            try:
                # Untimed uploads first, as the first node had from the runs above: the
                # figure is two running nodes, not a node's start (its pool's logins,
                # its statements prepared per connection, its first handshakes).
                ab_put(f"{second_url}/inbox/warm-up.bin", self.shared.client_pem, self.small,
                       4 * processes * concurrency, processes, concurrency, keepalive=(case == "B2"))
                return rate(self.shared, [shared_url, second_url], processes, concurrency)()
            finally:
                second.stop()
        try:
            two, one = self.alternate(two_nodes, rate(self.shared, shared_url, processes, concurrency))
        finally:
            self.shared.stop()
        self.add(case, f"{what} on PostgreSQL, {processes * concurrency} connections split over two nodes against one node",
                 two, one, two / one, "≥ 1.0× one node" if case == "B1" else "—", two / one >= 1.0 if case == "B1" else None,
                 "uploads/s")

    def main(self):
        default = ["B1", "B2", "B4"] if self.against or self.options.postgres else CASES
        selected = [c.upper() for c in self.options.cases.split(",")] if self.options.cases else default
        try:
            self.setup()
            if self.options.postgres:
                self.setup_postgres()
            for case in selected:
                self.log(f"{case} ...")
                started = time.monotonic()
                try:
                    if self.against:
                        self.against_case(case)
                    elif self.options.postgres:
                        self.postgres_case(case)
                    else:
                        getattr(self, f"case_{case.lower()}")()
                except Failure as failure:
                    self.fail(case, "", str(failure))
                    for wharf in [self.home] + ([self.shared] if self.options.postgres else []):
                        try:
                            wharf.stop()
                        except Failure as stopping:
                            self.log(f"    {stopping}")
                self.log(f"    {time.monotonic() - started:.1f} s")
        finally:
            self.processes.stop_all()
            if not self.options.keep:
                shutil.rmtree(self.workdir, ignore_errors=True)
        report = f"{self.machine()}\n\n{self.table()}\n"
        print(report)
        if self.options.markdown:
            with open(self.options.markdown, "w") as f:
                f.write(report)
        return 1 if any("fail" in row for row in self.rows) else 0


def main():
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark Wharf against nginx, curl and dd on this machine; print medians and ratios.",
        epilog="Cases: B1 new connection per upload, B2 keep-alive uploads, B3 one large upload, "
               "B4 many small deliveries, B5 one large delivery, B6 memory, B7 registry size, "
               "B8 the cost of a metrics scrape, B9 a hostile client (the defender, refusals in the registry, slow uploads), "
               "B10 pull: files fetched and acknowledged by the partner, against B4's push. "
               "A case that loses or refuses anything reports FAIL and the exit status is 1.")
    parser.add_argument("--quick", action="store_true", help="small sizes: every case in under two minutes")
    parser.add_argument("--runs", type=int, default=3, help="runs of Wharf and of the baseline, alternating (default 3)")
    parser.add_argument("--cases", help="comma-separated cases to run, such as B1,B3 (default: all)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the report to FILE")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, homes, nginx) afterwards")
    parser.add_argument("--workdir", metavar="DIR", default=None,
                        help="where to make the work directory (default: the system's temporary directory); "
                             "it should be on the disk the spool would use")
    parser.add_argument("--against", metavar="WHARF",
                        help="compare with another build of wharf (an earlier commit's release binary) instead of "
                             "nginx and curl, alternating the two: B1, B2 and B4")
    parser.add_argument("--postgres", action="store_true",
                        help="B1, B2 and B4 with the registry on PostgreSQL (a server of the run's own) against SQLite, "
                             "and two nodes against one on PostgreSQL")
    parser.add_argument("--wharf", default=".build/release/wharf", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.postgres and options.against:
        parser.error("--postgres and --against are two different comparisons: give one")
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    if options.cases:
        unknown = [c for c in options.cases.split(",") if c.upper() not in CASES]
        if unknown:
            parser.error(f"unknown case {', '.join(unknown)}; the cases are {', '.join(CASES)}")
    sys.exit(Bench(options).main())


if __name__ == "__main__":
    main()
