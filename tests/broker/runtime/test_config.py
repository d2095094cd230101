import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from broker.runtime.config import REPO_CONFIG, ConfigError, Secret, load_config


def write(tmp_path: Path, data: dict) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def defaults() -> dict:
    return yaml.safe_load(REPO_CONFIG.read_text())


def test_defaults_load_into_typed_frozen_object():
    cfg = load_config(REPO_CONFIG, env={})
    assert cfg.server.port == 5000 and isinstance(cfg.server.port, int)
    assert cfg.database.url is None and cfg.database.embedded
    assert cfg.kafka.local.enabled is True
    assert isinstance(cfg.paths.data_dir, Path) and "~" not in str(cfg.paths.data_dir)
    with pytest.raises(Exception):
        cfg.server.port = 1  # frozen


def test_environment_overrides_with_types():
    cfg = load_config(REPO_CONFIG, env={
        "SKYBROKER_SERVER__PORT": "5123",
        "SKYBROKER_KAFKA__LOCAL__ENABLED": "false",
        "KAFKA_BOOTSTRAP_SERVERS": "kafka:29092",
        "DATABASE_URL": "postgresql://u:pw@db/sky",
    })
    assert cfg.server.port == 5123
    assert cfg.kafka.local.enabled is False
    assert cfg.kafka.bootstrap_servers == "kafka:29092"
    assert cfg.database.url.get() == "postgresql://u:pw@db/sky"
    assert not cfg.database.embedded


def test_missing_setting_is_named(tmp_path):
    data = defaults()
    del data["kafka"]["group_id"]
    with pytest.raises(ConfigError, match=r"missing setting kafka\.group_id"):
        load_config(write(tmp_path, data), env={})


def test_malformed_setting_is_named(tmp_path):
    data = defaults()
    data["server"]["port"] = "not-a-port"
    with pytest.raises(ConfigError, match=r"server\.port must be an integer"):
        load_config(write(tmp_path, data), env={})
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(REPO_CONFIG, env={"SKYBROKER_SERVER__PORT": "99999"})
    with pytest.raises(ConfigError, match=r"kafka\.local\.enabled must be true or false"):
        load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__LOCAL__ENABLED": "maybe"})
    with pytest.raises(ConfigError, match=r"database\.url must be a postgresql"):
        load_config(REPO_CONFIG, env={"DATABASE_URL": "sqlite:///x.db"})
    with pytest.raises(ConfigError, match=r"server\.switch_interval_ms must be in"):
        load_config(REPO_CONFIG, env={"SKYBROKER_SERVER__SWITCH_INTERVAL_MS": "0"})


def test_unknown_settings_are_refused():
    with pytest.raises(ConfigError, match=r"SKYBROKER_SERVER__PROT names unknown setting server\.prot"):
        load_config(REPO_CONFIG, env={"SKYBROKER_SERVER__PROT": "1"})


def test_secrets_never_show():
    cfg = load_config(REPO_CONFIG, env={"DATABASE_URL": "postgresql://u:hunter2@db/sky",
                                       "SKYBROKER_SECRETS__ENCRYPTION_KEY": "topsecretkey"})
    text = repr(cfg) + str(cfg)
    assert "hunter2" not in text and "topsecretkey" not in text
    assert cfg.secrets.encryption_key == Secret("topsecretkey")
    assert "*" in repr(cfg.secrets.encryption_key)


def test_cli_stops_at_start_naming_the_setting(tmp_path):
    data = defaults()
    del data["server"]["host"]
    path = write(tmp_path, data)
    proc = subprocess.run([sys.executable, "-m", "broker.runtime.cli", "--config", str(path), "db", "current"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "missing setting server.host" in proc.stderr


def test_default_cluster_security_is_checked_and_its_password_hidden():
    """The configuration's Kafka cluster may use SASL (PLAIN/SCRAM) or TLS; what it needs is checked at start."""
    with pytest.raises(ConfigError, match=r"kafka\.group_id must not be empty"):
        load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__GROUP_ID": ""})
    with pytest.raises(ConfigError, match=r"kafka\.security_protocol"):
        load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__SECURITY_PROTOCOL": "KERBEROS"})
    with pytest.raises(ConfigError, match=r"kafka\.sasl_mechanism"):
        load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"})
    with pytest.raises(ConfigError, match=r"kafka\.sasl_username and kafka\.sasl_password"):
        load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                                      "SKYBROKER_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256"})
    cfg = load_config(REPO_CONFIG, env={"SKYBROKER_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                                        "SKYBROKER_KAFKA__SASL_MECHANISM": "SCRAM-SHA-256",
                                        "SKYBROKER_KAFKA__SASL_USERNAME": "reader",
                                        "SKYBROKER_KAFKA__SASL_PASSWORD": "hunter22"})
    assert cfg.kafka.sasl_password.get() == "hunter22"
    assert "hunter22" not in repr(cfg)


def test_database_planner_and_maintenance_settings(engine):
    """database.random_page_cost is set on skybroker's connections (null: the server's); the maintenance
    settings are checked."""
    import sqlalchemy as sa

    from broker.runtime.db import make_engine

    cfg = load_config(REPO_CONFIG, env={"SKYBROKER_DATABASE__RANDOM_PAGE_COST": "1.5"})
    url = engine.url.render_as_string(hide_password=False)
    for value, want in ((cfg, "1.5"), (replace(cfg, database=replace(cfg.database, random_page_cost=None)), None)):
        e = make_engine(url, value)
        try:
            with e.connect() as conn:
                got = conn.execute(sa.text("SHOW random_page_cost")).scalar()
                server = conn.execute(sa.text("SELECT boot_val FROM pg_settings WHERE name = 'random_page_cost'")).scalar()
        finally:
            e.dispose()
        assert got == (want or server)
    # the URL's own options stay, beside ours
    e = make_engine(url + ("&" if "?" in url else "?") + "options=-c%20work_mem%3D7MB", cfg)
    try:
        with e.connect() as conn:
            assert conn.execute(sa.text("SHOW work_mem")).scalar() == "7MB"
            assert conn.execute(sa.text("SHOW random_page_cost")).scalar() == "1.5"
    finally:
        e.dispose()
    for env in ({"SKYBROKER_DATABASE__RANDOM_PAGE_COST": "0"}, {"SKYBROKER_DATABASE__MAINTENANCE_INTERVAL_S": "0"},
                {"SKYBROKER_DATABASE__PARTITIONS_AHEAD_MONTHS": "-1"}):
        with pytest.raises(ConfigError, match="database"):
            load_config(REPO_CONFIG, env=env)
