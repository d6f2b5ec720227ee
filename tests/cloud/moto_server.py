#!/usr/bin/env python3
"""Start and stop a local moto_server (AWS emulator) for skoop's cloud tests.

    python3 tests/cloud/moto_server.py start [--port 0] [--host 127.0.0.1] [--timeout 20]
                                             [--log FILE] [--venv DIR]
        Starts moto_server in its own session, detached from this script, and waits until
        `GET /moto-api/` answers. Prints one JSON line on stdout:
            {"pid": 12345, "port": 41679, "endpoint": "http://127.0.0.1:41679", "log": "/tmp/..."}
        `pid` is the moto_server python process itself (checked: it owns the listening
        socket), so killing it frees the port. `--port 0` lets the kernel choose a free port.
        Fails (exit 1, message on stderr, server killed) if moto is not ready within --timeout s.

    python3 tests/cloud/moto_server.py stop PID [--timeout 10] [--force]
        Refuses a PID that is not a moto_server (unless --force). Sends SIGTERM, then SIGKILL
        after --timeout/2 s, and checks that the ports it listened on are free. Prints
        {"stopped": PID, "ports": [...]}. A PID that is already gone is not an error.

Standard library only; the venv (see moto_venv.py) supplies moto itself.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_venv  # noqa: E402


def _socket_inodes(pid):
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            m = re.fullmatch(r"socket:\[(\d+)\]", link)
            if m:
                inodes.add(m.group(1))
    except OSError:
        pass
    return inodes


def _listening(inodes=None):
    """(port, inode) of every TCP socket in LISTEN state, optionally only those inodes."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] != "0A":  # TCP_LISTEN
                        continue
                    port = int(cols[1].rsplit(":", 1)[1], 16)
                    inode = cols[9]
                    if inodes is None or inode in inodes:
                        found.append((port, inode))
        except OSError:
            pass
    return found


def listening_ports(pid):
    return sorted({p for p, _ in _listening(_socket_inodes(pid))})


def port_listened(port):
    return any(p == port for p, _ in _listening())


def alive(pid):
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except OSError:
        return False


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def _ready(host, port):
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _kill(pid, timeout):
    """SIGTERM, then SIGKILL; wait until gone. Returns True if it is gone."""
    for sig, wait in ((signal.SIGTERM, timeout / 2), (signal.SIGKILL, timeout / 2)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:  # reap it if it is our child (start's failure path)
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            if not alive(pid):
                return True
            time.sleep(0.05)
    return not alive(pid)


def start(args):
    venv = moto_venv.venv_dir(args.venv)
    py = moto_venv.venv_python(args.venv)
    server = os.path.join(venv, "bin", "moto_server")
    if not (os.path.exists(py) and os.path.exists(server)):
        sys.exit(f"moto_server.py start: {moto_venv.missing_venv_message(args.venv)}")
    if args.log:
        log_path = os.path.abspath(args.log)
    else:
        fd, log_path = tempfile.mkstemp(prefix="skoop-moto-", suffix=".log")
        os.close(fd)
    t0 = time.monotonic()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    # Auth starts off; moto_scenarios.py --auth turns it on per scenario.
    env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
    with open(log_path, "ab") as log:
        # The venv's python runs the moto_server script directly (no shell, no nohup):
        # the PID we get is the server process itself.
        proc = subprocess.Popen(
            [py, server, "-H", args.host, "-p", str(args.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            close_fds=True,
        )
    pid = proc.pid
    deadline = t0 + args.timeout
    port = None

    def fail(msg):
        _kill(pid, 4)
        tail = _tail(log_path)
        sys.stderr.write(
            f"moto_server.py start: {msg} (pid {pid}, log {log_path})\n"
            + (f"--- last lines of the log ---\n{tail}" if tail else "")
        )
        sys.exit(1)

    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"moto_server exited with status {proc.returncode} before it was ready")
        if port is None:
            ports = listening_ports(pid)
            if args.port and args.port in ports:
                port = args.port
            elif not args.port and ports:
                port = ports[0]
        if port is not None and _ready(args.host, port):
            break
        time.sleep(0.05)
    else:
        if port is None:
            fail(f"moto_server did not listen within {args.timeout:g} s"
                 + (f" (is port {args.port} taken?)" if args.port else ""))
        fail(f"moto_server on port {port} did not answer GET /moto-api/ within {args.timeout:g} s")
    print(json.dumps({
        "pid": pid,
        "port": port,
        "endpoint": f"http://{args.host}:{port}",
        "log": log_path,
        "startup_seconds": round(time.monotonic() - t0, 3),
    }))
    sys.stdout.flush()
    # Do not wait for the child: it lives on in its own session.
    os._exit(0)


def stop(args):
    pid = args.pid
    if not alive(pid):
        print(json.dumps({"stopped": pid, "ports": [], "note": "process was already gone"}))
        return
    cmd = cmdline(pid)
    if "moto_server" not in cmd and not args.force:
        sys.exit(f"moto_server.py stop: pid {pid} is not a moto_server ({cmd!r}); use --force to kill it anyway")
    ports = listening_ports(pid)
    if not _kill(pid, args.timeout):
        sys.exit(f"moto_server.py stop: pid {pid} survived SIGTERM and SIGKILL")
    busy = []
    deadline = time.monotonic() + 2
    while True:
        busy = [p for p in ports if port_listened(p)]
        if not busy or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if busy:
        sys.exit(f"moto_server.py stop: pid {pid} is gone but port(s) {busy} are still listened on")
    print(json.dumps({"stopped": pid, "ports": ports}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="start moto_server and wait until it is ready")
    s.add_argument("--port", type=int, default=0, help="TCP port, 0 = any free port (default)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for readiness (default 20)")
    s.add_argument("--log", help="server log file (default: a new /tmp/skoop-moto-*.log)")
    s.add_argument("--venv", help="moto venv (default: $SKOOP_MOTO_VENV or ~/.cache/skoop-test/moto-venv)")
    t = sub.add_parser("stop", help="kill a moto_server started by `start` and check its port is free")
    t.add_argument("pid", type=int)
    t.add_argument("--timeout", type=float, default=10.0)
    t.add_argument("--force", action="store_true", help="kill even if the PID does not look like moto_server")
    args = ap.parse_args()
    if args.cmd == "start":
        start(args)
    else:
        stop(args)


if __name__ == "__main__":
    main()
