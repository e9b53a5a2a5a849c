"""docker-compose.yml: the production stack parses and has its health checks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_file_declares_the_stack_with_health_checks():
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"db", "db-replica", "redis", "migrate", "web", "worker", "beat",
                             "proxy"}
    for name in ("db", "redis", "web", "worker"):
        assert services[name]["healthcheck"]["test"], name
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert services["worker"]["command"][:3] == ["celery", "-A", "edc"]
    assert "beat" in services["beat"]["command"]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully")
        env = services[name]["environment"]
        assert env["CELERY_BROKER_URL"].startswith("redis://")
        assert "${SECRET_KEY" in env["SECRET_KEY"]  # from the environment, never committed


def test_compose_scales_web_and_worker_out_behind_a_proxy():
    """Issue 19: several stateless web and worker processes on one primary and its replica."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name in ("web", "worker"):
        assert services[name]["deploy"]["replicas"] >= 2, name
    assert "ports" not in services["web"]  # replicas cannot share a host port: the proxy has it
    assert services["proxy"]["ports"] == ["8000:8000"]
    assert "web" in services["proxy"]["depends_on"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1  # one scheduler only
    assert "@db-replica:" in services["web"]["environment"]["DATABASE_REPLICA_URL"]


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")
def test_docker_compose_config_parses():
    env = {**os.environ, "POSTGRES_PASSWORD": "x", "SECRET_KEY": "y", "RANDOMIZATION_SECRET": "z"}
    result = subprocess.run(["docker-compose", "-f", str(COMPOSE), "config", "-q"],
                            env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def test_the_image_ships_the_bytecode_its_processes_cannot_write():
    """Issue 19: with ``PYTHONDONTWRITEBYTECODE=1`` no process writes ``.pyc``; unless the image
    compiles the app once, every process start (migrate, web, worker) compiles its modules."""
    lines = (COMPOSE.parent / "Dockerfile").read_text().splitlines()
    assert any(line.startswith("ENV ") and "PYTHONDONTWRITEBYTECODE=1" in line for line in lines)
    last_copy = max(index for index, line in enumerate(lines) if line.startswith("COPY "))
    compiles = [index for index, line in enumerate(lines) if "python -m compileall" in line]
    assert compiles and compiles[0] > last_copy
