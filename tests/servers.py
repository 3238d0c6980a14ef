"""Real servers for the tests, started by the tests on 127.0.0.1 and stopped by them.

- :func:`s3_server`: an S3-compatible store (moto's server mode), its
  endpoint and test credentials as environment variables.
- :func:`dask_processes`: a ``dask scheduler`` and two ``dask worker``
  processes, reached at ``tcp://127.0.0.1:PORT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "lossctl-tests"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """A moto S3 server on loopback with one bucket; yields the environment that reaches it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        client(env).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        server.stop()


def client(env: Mapping[str, str]) -> object:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def upload(env: Mapping[str, str], local: Path, key: str) -> str:
    """Put a local file at ``key`` in the bucket; its ``s3://`` URI."""
    client(env).upload_file(str(local), BUCKET, key)  # type: ignore[attr-defined]
    return f"s3://{BUCKET}/{key}"


def _wait_for(port: int, procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args!r} ended with {p.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def dask_processes(env: Mapping[str, str] | None = None, workers: int = 2, timeout: float = 60.0) -> Iterator[str]:
    """``dask scheduler`` + ``dask worker`` processes on loopback; yields the scheduler's address."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    full = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "error"}
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs: list[subprocess.Popen[bytes]] = []
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    try:
        procs.append(subprocess.Popen(
            [*dask, "--host", "127.0.0.1", "--port", str(port), "--no-dashboard", "--no-show"], env=full, **quiet
        ))
        deadline = time.monotonic() + timeout
        # The workers start with the scheduler (their imports overlap) and connect when it listens.
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--host", "127.0.0.1",
                  "--nthreads", "1", "--no-dashboard", "--memory-limit", "0", "--no-nanny"]
        for _ in range(workers):
            procs.append(subprocess.Popen(worker, env=full, **quiet))
        _wait_for(port, procs, deadline)
        with Client(address, timeout=timeout) as c:
            c.wait_for_workers(workers, timeout=max(1.0, deadline - time.monotonic()))
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
