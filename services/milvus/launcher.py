#!/usr/bin/env python3
"""Run the Milvus 2.3.5 standalone server (the ``milvus`` PyPI wheel) reachable on loopback only.

Why a network namespace: the 2.3.5 binary opens every gRPC server (proxy 19530, rootcoord,
datacoord, querycoord, querynode, datanode, indexnode, the proxy's internal port) and its metrics /
health server (9091) on ``:port``, i.e. on every interface.  Its ``<component>.ip`` settings only
change the address it *advertises* in etcd, and the binary has no listen-address setting (checked:
with all ``*.ip`` set to 127.0.0.1, ``ss -ltnp`` still shows ``*:19530`` ...; only the embedded etcd
binds 127.0.0.1).  So:

1. this launcher binds the public endpoint ``127.0.0.1:$MILVUS_PORT`` in the host's network
   namespace first;
2. then moves itself into a fresh network namespace (``unshare(CLONE_NEWNET)``; as non-root also
   ``CLONE_NEWUSER``) that has nothing but ``lo``, brings ``lo`` up and starts ``milvus run
   standalone`` there (every component port exists only inside that namespace);
3. and forwards each connection accepted on the host-side socket to ``127.0.0.1:$MILVUS_PORT``
   inside the namespace (a socket keeps the namespace it was created in).

Seen from the host, the only listening socket is this process on 127.0.0.1:$MILVUS_PORT.

Usage: ``launcher.py [--data-dir DIR] [--host 127.0.0.1] [--port 19530]`` (normally through
``scripts/services start milvus``).  Prints ``TV5_MILVUS_READY http://HOST:PORT`` when the server
answers.  SIGTERM/SIGINT stop Milvus cleanly (SIGTERM, wait, then SIGKILL); a clean stop matters:
after a hard kill the next start waits ~30-60 s for the old etcd sessions to expire.
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
PR_SET_PDEATHSIG = 1
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

COMPONENTS = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexCoord", "indexNode", "dataCoord", "dataNode")


def log(msg: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [tv5-milvus] {msg}", flush=True)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def enter_private_netns() -> None:
    """Move this (still single-threaded) process into a new network namespace with lo up."""
    libc = _libc()
    if os.geteuid() == 0:
        flags = CLONE_NEWNET
    else:  # unprivileged: a user namespace grants CAP_NET_ADMIN over the new network namespace
        flags = CLONE_NEWNET | CLONE_NEWUSER
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWNET{'|CLONE_NEWUSER' if flags & CLONE_NEWUSER else ''}) failed: "
                           f"{os.strerror(err)} (needs root, or unprivileged user namespaces enabled)")
    if flags & CLONE_NEWUSER:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    # ip link set lo up, without needing iproute2
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", b"lo", 0)
        flags_now = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags_now | IFF_UP))


def _pump(src: socket.socket, dst: socket.socket) -> None:
    buf = bytearray(256 * 1024)
    view = memoryview(buf)
    try:
        while True:
            n = src.recv_into(buf)
            if not n:
                break
            dst.sendall(view[:n])
    except OSError:
        pass
    finally:
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def _serve_connection(client: socket.socket, port: int) -> None:
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
    back.start()
    _pump(client, upstream)
    back.join()
    client.close()
    upstream.close()


def forward(listener: socket.socket, port: int) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return  # listener closed at shutdown
        threading.Thread(target=_serve_connection, args=(client, port), daemon=True).start()


def wait_healthy(proc: subprocess.Popen, metrics_port: int, timeout: float) -> None:
    url = f"http://127.0.0.1:{metrics_port}/healthz"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"milvus exited with code {proc.returncode} during start-up")
        try:
            with opener.open(url, timeout=2) as resp:
                if b"OK" in resp.read():
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"milvus not healthy after {timeout:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("MILVUS_DATA_DIR", str(REPO / "data" / "milvus-server")))
    ap.add_argument("--host", default=os.environ.get("MILVUS_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("MILVUS_PORT", "19530")))
    ap.add_argument("--start-timeout", type=float, default=float(os.environ.get("MILVUS_START_TIMEOUT", "240")))
    ap.add_argument("--stop-timeout", type=float, default=float(os.environ.get("MILVUS_STOP_TIMEOUT", "60")))
    args = ap.parse_args()
    t0 = time.monotonic()

    # 1. the public endpoint, in the host namespace, loopback only
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((args.host, args.port))
    except OSError as e:
        log(f"cannot bind {args.host}:{args.port}: {e}")
        return 2
    listener.listen(128)

    # 2. everything Milvus opens from here on lives in a namespace with only lo
    try:
        enter_private_netns()
    except OSError as e:
        log(f"ERROR: {e}")
        return 3

    import milvus  # the wheel; imported late (its import has no side effects on the network)

    server = milvus.default_server
    data_dir = Path(args.data_dir).resolve()
    server.set_base_dir(str(data_dir))
    cfg = server.config
    cfg.update(proxy_port=args.port)  # inside the namespace; free there by construction
    for comp in COMPONENTS:  # advertise loopback in etcd too (default: first non-loopback address)
        cfg.set(f"{comp}.ip", "127.0.0.1")
    cfg.resolve()  # writes <data>/configs/milvus.yaml
    milvus._initialize_data_files(str(data_dir))  # unpacks bin/ on first start
    metrics_port, sock = cfg.resolve_port(9091)
    sock.close()

    exe = data_dir / "bin" / "milvus"
    # nothing outside the namespace is reachable from inside it: no proxy either
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy")}
    env.update(DEPLOY_MODE="STANDALONE", METRICS_PORT=str(metrics_port), MILVUS_RUN_DIR=str(data_dir / "run"))
    # Milvus reads any config key from the environment (upper case, '.' -> '_'), over milvus.yaml.
    # A standalone query node has nowhere to hand its loaded segments to, yet on SIGTERM it waits
    # queryNode.gracefulStopTimeout for that migration: with a loaded collection a stop took > 60 s.
    env.setdefault("QUERYNODE_GRACEFULSTOPTIMEOUT", os.environ.get("MILVUS_QUERYNODE_STOP_TIMEOUT", "3"))
    env.setdefault("INDEXNODE_GRACEFULSTOPTIMEOUT", "3")
    # The graph writes each collection once (insert all, one flush) and never streams into it. By default a
    # growing segment is sealed at 23 % of 512 MB, so a 162K x 448 collection (~290 MB) lands in 3 segments,
    # each indexed, which the data coordinator then merges and indexes again: ~2 min of both cores after the
    # load, under the checks and the next steps (benchmarks/milvus_request_path.py). One segment up to 1 GB.
    env.setdefault("DATACOORD_SEGMENT_MAXSIZE", "1024")
    env.setdefault("DATACOORD_SEGMENT_SEALPROPORTION", "1")
    # whole-server bound on a graceful stop (default 1800 s); beyond it Milvus force-quits itself
    env.setdefault("COMMON_GRACEFULSTOPTIMEOUT", str(max(5, int(args.stop_timeout) - 15)))
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (str(exe.parent), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def _child_setup() -> None:  # if the launcher dies hard, Milvus still gets a (clean) SIGTERM
        _libc().prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)

    with open(logs / "milvus-stdout.log", "ab") as out, open(logs / "milvus-stderr.log", "ab") as err:
        proc = subprocess.Popen([str(exe), "run", "standalone"], cwd=str(data_dir), env=env,
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, preexec_fn=_child_setup)
    log(f"milvus pid {proc.pid} starting (data {data_dir}, endpoint {args.host}:{args.port}, "
        f"components in a private network namespace)")

    stopping = threading.Event()
    failed = threading.Event()
    stop_requested_at = [0.0]

    def _stop(signum, _frame) -> None:
        if stopping.is_set():
            return
        stopping.set()
        stop_requested_at[0] = time.monotonic()
        log("stopping milvus" + (f" (signal {signum})" if signum else ""))
        try:
            listener.close()
        except OSError:
            pass
        if proc.poll() is None:
            proc.terminate()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGHUP, _stop)

    try:
        wait_healthy(proc, metrics_port, args.start_timeout)
    except (RuntimeError, TimeoutError) as e:
        if not stopping.is_set():
            log(f"ERROR: {e}; see {logs}/milvus-stdout.log")
            failed.set()
            _stop(0, None)
    if not stopping.is_set():
        threading.Thread(target=forward, args=(listener, args.port), daemon=True).start()
        log(f"TV5_MILVUS_READY http://{args.host}:{args.port} in {time.monotonic() - t0:.1f} s")

    # 3. supervise
    while proc.poll() is None and not stopping.is_set():
        time.sleep(0.5)
    if not stopping.is_set():
        log(f"ERROR: milvus exited unexpectedly with code {proc.returncode}")
        return 1
    try:
        proc.wait(timeout=max(1.0, args.stop_timeout - (time.monotonic() - stop_requested_at[0])))
        took = time.monotonic() - stop_requested_at[0]
        if proc.returncode in (0, -signal.SIGTERM):
            log(f"milvus stopped cleanly in {took:.1f} s")
        elif proc.returncode == -signal.SIGABRT and not failed.is_set():
            # 2.3.5 always ends a SIGTERM with "panic: context canceled" in kv.CloseEtcdClient (SIGABRT)
            # *after* "All cleanup done": components and etcd sessions are already closed by then.
            log(f"milvus stopped in {took:.1f} s (SIGABRT from the known 2.3.5 panic in CloseEtcdClient "
                f"after its cleanup; harmless)")
        else:
            log(f"milvus stopped in {took:.1f} s (exit code {proc.returncode})")
    except subprocess.TimeoutExpired:
        log(f"milvus did not stop within {args.stop_timeout:.0f} s, killing it")
        proc.kill()
        proc.wait()
    return 1 if failed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
