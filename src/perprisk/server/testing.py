"""Helpers for tests and local experiments: run ``perprisk serve`` as a real process on loopback, run a
throwaway PostgreSQL server, find Chromium.  Used by ``tests/server`` and ``tests/e2e``.

Nothing here reaches beyond this machine: servers bind 127.0.0.1, clients talk to 127.0.0.1.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[3]
SERVICES_SCRIPT = ROOT / "scripts" / "test-services.sh"

#: Chromium flags for this closed network (no background connections, no sandbox as root, no GPU).
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--disable-dev-shm-usage", "--metrics-recording-only", "--no-default-browser-check",
]


class ServiceMissing(RuntimeError):
    """A service a test needs (Chromium, PostgreSQL) is not installed and could not be installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_services() -> None:
    """Run ``scripts/test-services.sh`` (installs Chromium and PostgreSQL from Debian when missing)."""
    if not SERVICES_SCRIPT.exists():
        raise ServiceMissing(f"{SERVICES_SCRIPT} is missing")
    result = subprocess.run(["bash", str(SERVICES_SCRIPT)], capture_output=True, text=True, timeout=1200)
    if result.returncode != 0:
        raise ServiceMissing(f"{SERVICES_SCRIPT} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def chromium_path(install: bool = True) -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if install:
        ensure_services()
        return chromium_path(install=False)
    raise ServiceMissing("Chromium is not installed: run scripts/test-services.sh (apt-get install chromium)")


# ------------------------------------------------------------------------------------------ perprisk serve


class ServerProcess:
    """``python -m perprisk serve`` in a subprocess on a free loopback port."""

    def __init__(self, db: str, admin_key: str, *args: str, port: int | None = None, log: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.db = db
        self.admin_key = admin_key
        self.args = list(args)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log or Path(tempfile.mkstemp(prefix="perprisk-serve-", suffix=".log")[1])
        self.env = env or {}
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> "ServerProcess":
        env = {**os.environ, "PERPRISK_ADMIN_KEY": self.admin_key, "PYTHONUNBUFFERED": "1", **self.env}
        cmd = [sys.executable, "-m", "perprisk", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--db", self.db, *self.args]
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"perprisk serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"perprisk serve did not answer within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return Path(self.log_path).read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM: a graceful shutdown (queued commands finish, snapshot, close)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def admin(self) -> dict[str, str]:
        return {"X-Admin-Key": self.admin_key}

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ PostgreSQL


def postgres_bin_dir(install: bool = True) -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]),
                        reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    path = shutil.which("initdb")
    if path:
        return Path(path).resolve().parent
    if install:
        ensure_services()
        return postgres_bin_dir(install=False)
    raise ServiceMissing("PostgreSQL is not installed: run scripts/test-services.sh (apt-get install postgresql)")


class PostgresCluster:
    """A throwaway PostgreSQL server in a temporary directory, on a free loopback port.

    As root it runs as an unprivileged user (``postgres`` when it exists, else ``nobody``): PostgreSQL refuses
    to run as root."""

    def __init__(self, base: Path | None = None) -> None:
        self.bin = postgres_bin_dir()
        self.base = Path(base or tempfile.mkdtemp(prefix="perprisk-pg-"))
        self.data = self.base / "data"
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            for name in ("postgres", "nobody"):
                try:
                    self.user = pwd.getpwnam(name)
                    break
                except KeyError:
                    continue
            if self.user is None:
                raise ServiceMissing("running as root with neither a postgres nor a nobody user to run PostgreSQL")

    def _run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        if self.user is not None:
            uid, gid = self.user.pw_uid, self.user.pw_gid

            def demote() -> None:
                os.setgid(gid)
                os.setuid(uid)
            result = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=demote, cwd=str(self.base),
                                    env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "HOME": str(self.base)})
        else:
            result = subprocess.run(cmd, capture_output=True, text=True, cwd=str(self.base))
        if check and result.returncode != 0:
            raise ServiceMissing(f"{' '.join(cmd)} failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        return result

    def start(self) -> "PostgresCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            os.chown(self.base, self.user.pw_uid, self.user.pw_gid)
            os.chmod(self.base, 0o700)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "perprisk", "--auth=trust", "-E", "UTF8",
                  "--no-instructions")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"), "-w", "-t", "60",
                  "-o", f"-h 127.0.0.1 -p {self.port} -k {self.base} -c max_connections=50", "start")
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://perprisk@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.data.exists():
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
