"""Ingest processes that die are restarted; shutdown always completes; a process that keeps dying makes
``skybroker ingest`` give up with a non-zero exit (issue 8, item 6)."""

import os
import signal
import subprocess
import sys
import time

from broker.ingest.consumers import IngestSupervisor
from broker.ingest.replay import messages, publish

from .helpers import count, ingest_config, make_group_with_filter, make_stream, wait_for
from .test_ingest import ZTF
from .test_ingest_robustness import _ingest_process


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _ingest_children(pid: int) -> list[int]:
    """The ingest processes (spawned Pythons), not multiprocessing's resource tracker."""
    out = []
    for c in _children(pid):
        try:
            cmd = open(f"/proc/{c}/cmdline", "rb").read()
        except OSError:
            continue
        if b"resource_tracker" not in cmd:
            out.append(c)
    return out


def test_a_killed_ingest_process_is_restarted_and_shutdown_completes(admin, make_user, config, engine,
                                                                      kafka_bootstrap, kafka_topic):
    owner = make_user()
    sid = make_stream(admin, kafka_topic, "ztf_avro")
    _, fid = make_group_with_filter(owner, admin, sid)
    cfg = ingest_config(config, kafka_bootstrap)
    proc = _ingest_process(cfg, engine.url.render_as_string(hide_password=False))
    try:
        publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=5, derive_new=True, seed=11))
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 5)
        (child,) = wait_for(lambda: _ingest_children(proc.pid), what="the ingest process")
        os.kill(child, signal.SIGKILL)
        # its parent notices, forgets its status row and starts another
        wait_for(lambda: [c for c in _ingest_children(proc.pid) if c != child], what="a restarted process")
        wait_for(lambda: count(engine, "SELECT count(*) FROM ingest_status WHERE consumer LIKE :c",
                               c=f"%:{child}") == 0, what="the dead consumer's status gone")
        publish(kafka_bootstrap, kafka_topic, messages([ZTF], "ztf_avro", count=5, derive_new=True, seed=12))
        wait_for(lambda: count(engine, "SELECT count(*) FROM candidates WHERE filter_id=:f", f=fid) == 10,
                 what="alerts after the restart")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0  # a hang here is the defect: shutdown must complete
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = proc.stdout.read().decode()
    assert "died with exit code -9" in out and "restarting ingest process 0" in out


def _crash(cfg, on_commit=None):
    sys.exit(3)


def test_a_process_that_keeps_dying_makes_the_supervisor_give_up(config):
    sup = IngestSupervisor(config, 1, max_quick_deaths=3, target=_crash).start()
    try:
        deadline = time.monotonic() + 60
        healthy = True
        while healthy and time.monotonic() < deadline:
            healthy = sup.check()
            time.sleep(0.1)
        assert not healthy
        assert sup.restarts == 2  # started 3 times in all, dying each time
        assert sup.slots[0].process.exitcode == 3
    finally:
        sup.stop(5)


def test_skybroker_ingest_exits_non_zero_when_it_cannot_go_on(config, engine, kafka_bootstrap, tmp_path):
    """Every process dies at start (its data directory is a file, so the key that decrypts cluster
    credentials cannot be kept there): the command gives up and exits non-zero."""
    cfg = ingest_config(config, kafka_bootstrap)
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("a file, not a directory")
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "KAFKA_BOOTSTRAP_SERVERS": cfg.kafka.bootstrap_servers, "SKYBROKER_PATHS__DATA_DIR": str(not_a_dir),
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "broker.runtime.cli", "ingest", "--processes", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        rc = proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    out = proc.stdout.read().decode()
    assert rc != 0, out
    assert "giving up" in out
