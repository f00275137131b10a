"""compose.yaml and deploy/nginx.conf as Compose and nginx read them: parsed with PyYAML (no Compose v2 here), and
checked with `docker-compose config` where a Compose binary exists."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def compose() -> dict:
    """compose.yaml, its anchors and merge keys resolved as Compose resolves them."""
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_compose_env_file_is_the_short_form_every_compose_reads(compose):
    """`env_file: {path, required}` needs Compose >= 2.24; a plain path (or list of paths) works everywhere."""
    for name in ("app1", "app2"):
        env_file = compose["services"][name]["env_file"]
        paths = env_file if isinstance(env_file, list) else [env_file]
        assert paths and all(isinstance(path, str) for path in paths), env_file


def test_compose_app_processes_share_one_image_built_once(compose):
    app1, app2 = compose["services"]["app1"], compose["services"]["app2"]
    assert app1["image"] == app2["image"] and ":" in app1["image"]
    assert "build" in app1 and "build" not in app2
    assert app2.get("pull_policy") == "never"  # no registry has it: it is app1's build
    assert "app1" in app2["depends_on"]  # so Compose v1 builds app1's image before it creates app2


def test_compose_runs_both_async_modes_on_one_database_and_redis(compose):
    app1, app2 = (compose["services"][name]["environment"] for name in ("app1", "app2"))
    assert app1.get("ASYNC_MODE", "gevent") == "gevent" and app2["ASYNC_MODE"] == "eventlet"
    for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "ALLOWED_ORIGINS", "AUTH_MODE"):
        assert app1[key] == app2[key]
    assert app1["DATABASE_URL"].startswith("postgresql+psycopg://") and app1["REDIS_URL"].startswith("redis://")


def test_compose_allowed_origins_come_from_the_environment_with_a_default(compose):
    origins = compose["services"]["app1"]["environment"]["ALLOWED_ORIGINS"]
    assert re.fullmatch(r"\$\{ALLOWED_ORIGINS:-http://localhost:8080\}", origins), origins
    assert compose["services"]["proxy"]["ports"] == ["8080:80"]


def test_compose_postgres_is_utf8_and_everything_waits_for_health(compose):
    services = compose["services"]
    assert "--encoding=UTF8" in services["postgres"]["environment"]["POSTGRES_INITDB_ARGS"]
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
        assert services["app1"]["depends_on"][name]["condition"] == "service_healthy"


def test_nginx_re_resolves_the_app_processes_and_keeps_clients_sticky():
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert re.search(r"^\s*resolver\s+127\.0\.0\.11\s+valid=10s\b", code, re.M)
    # A variable in proxy_pass makes nginx resolve the name per request (a literal host is resolved once, at start).
    target = re.search(r"proxy_pass\s+http://\$(\w+):5000;", code)
    assert target, "proxy_pass must go through a variable"
    mapping = re.search(r'split_clients\s+"\$\{remote_addr\}"\s+\$' + target.group(1) + r"\s*\{([^}]*)\}", code)
    assert mapping and re.findall(r"\b(app\d)\b", mapping.group(1)) == ["app1", "app2"]
    assert "upstream" not in code  # an upstream block's servers would be resolved once again
    assert "proxy_set_header Upgrade $http_upgrade;" in code


def test_compose_config_passes_where_compose_exists(tmp_path):
    binary = shutil.which("docker-compose")
    command = [binary] if binary else None
    if command is None and shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        command = ["docker", "compose"] if probe.returncode == 0 else None
    if command is None:
        pytest.skip("no Compose binary (docker-compose or the docker compose plugin)")
    shutil.copy(ROOT / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    (tmp_path / ".env").write_text("GROQ_API_KEY=\n")  # what `cp .env.example .env` leaves
    result = subprocess.run([*command, "-f", "compose.yaml", "config"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "SECRET_KEY": "k" * 40}, timeout=120)
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert resolved["services"]["app2"]["environment"]["ALLOWED_ORIGINS"] == "http://localhost:8080"
    assert resolved["services"]["app1"]["image"] == resolved["services"]["app2"]["image"]
