"""docker-compose.yml parses and names only settings that config.yaml has."""

from pathlib import Path

import yaml

from broker.runtime.config import REPO_CONFIG, load_config

REPO = Path(__file__).resolve().parent.parent


def compose():
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_parses_with_expected_services():
    services = compose()["services"]
    assert {"db", "kafka", "api", "ingest", "followup", "migrate"} <= set(services)
    assert services["ingest"]["command"] == ["skybroker", "ingest"]
    assert services["api"]["command"] == ["skybroker", "serve"]
    assert services["migrate"]["command"] == ["skybroker", "db", "upgrade"]


def test_compose_environment_is_a_valid_configuration():
    services = compose()["services"]
    for name in ("api", "ingest", "followup", "migrate"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        # ${VAR:-} interpolations stand for values supplied at deploy time
        env = {k: ("dummy-key" if v.startswith("${") else v) for k, v in env.items()}
        cfg = load_config(REPO_CONFIG, env=env)  # raises ConfigError naming any unknown/malformed setting
        assert cfg.database.url.get().startswith("postgresql://skybroker:")
        assert cfg.kafka.bootstrap_servers == "kafka:9092"
        assert cfg.kafka.local.enabled is False
        assert cfg.server.port == int(services["api"]["ports"][0].split(":")[1])


def test_compose_kafka_and_database_match_the_urls():
    services = compose()["services"]
    env = services["api"]["environment"]
    pg = services["db"]["environment"]
    assert f"{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@db:5432/{pg['POSTGRES_DB']}" in env["DATABASE_URL"]
    assert "PLAINTEXT://kafka:9092" in services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert services["kafka"]["image"].endswith(load_config(REPO_CONFIG, env={}).kafka.local.version)


def test_compose_commands_are_skybroker_commands():
    from broker.runtime.cli import build_parser

    for name, svc in compose()["services"].items():
        cmd = svc.get("command")
        if cmd and cmd[0] == "skybroker":
            build_parser().parse_args(cmd[1:])  # exits (SystemExit) on an unknown command


def test_ingest_runs_replicas_that_share_the_topics_partitions():
    """N ingest containers of P processes each join one group; topics are made with at least N x P
    partitions (by skybroker and by the broker on first use), so that every consumer has a share."""
    services = compose()["services"]
    replicas = services["ingest"]["deploy"]["replicas"]
    n = int(str(replicas).split(":-")[1].rstrip("}")) if str(replicas).startswith("${") else int(replicas)
    env = {k: ("dummy-key" if str(v).startswith("${") else str(v)) for k, v in services["ingest"]["environment"].items()}
    cfg = load_config(REPO_CONFIG, env=env)
    assert n >= 2
    assert cfg.kafka.topic_partitions >= n * cfg.ingest.processes
    assert int(services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]) == cfg.kafka.topic_partitions
