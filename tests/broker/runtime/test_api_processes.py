"""``server.processes`` > 1: several API processes share the port, a killed one is restarted, and
shutdown stops them all (issue 8: "several server processes as SkyPortal deploys them")."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests

from broker.runtime.kafka import free_port


def _api_children(pid: int) -> set[int]:
    """Spawned API processes of ``pid`` (not multiprocessing's resource tracker)."""
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    found = set()
    for child in map(int, out.split()):
        try:
            cmd = open(f"/proc/{child}/cmdline", "rb").read()
        except OSError:
            continue
        if b"spawn_main" in cmd and b"resource_tracker" not in cmd:
            found.add(child)
    return found


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_several_api_processes_share_the_port_and_are_kept_alive(admin, engine, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "SKYBROKER_SERVER__PORT": str(port), "SKYBROKER_SERVER__PROCESSES": "3",
           "SKYBROKER_PATHS__DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "broker.runtime.cli", "serve"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _listening(port), 60, "the API port")
        def two_children(exclude=()):
            found = _api_children(proc.pid)
            return found if len(found) == 2 and not found & set(exclude) else None

        children = _wait(two_children, 60, "two API children")
        headers = {"Authorization": f"token {admin.token}", "Connection": "close"}
        url = f"http://127.0.0.1:{port}/api/sysinfo"
        time.sleep(2)  # every child listening
        codes = [requests.get(url, headers=headers, timeout=30).status_code for _ in range(30)]
        assert codes == [200] * 30

        victim = sorted(children)[0]
        os.kill(victim, signal.SIGKILL)
        # the parent notices within a second and restarts it after a 1 s backoff
        replaced = _wait(lambda: two_children(exclude=[victim]), 60, "the killed API process to be replaced")
        assert replaced - children  # a new pid
        codes = [requests.get(url, headers=headers, timeout=30).status_code for _ in range(30)]
        assert codes == [200] * 30

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert not any(os.path.exists(f"/proc/{c}") and b"spawn_main" in open(f"/proc/{c}/cmdline", "rb").read()
                       for c in replaced), "API children left running after shutdown"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        out = proc.stdout.read().decode(errors="replace")
    assert "restarting api process" in out, out[-3000:]
