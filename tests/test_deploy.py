"""The deployment files as their tools read them: compose.yaml (PyYAML, and `docker-compose config` where a Compose
binary exists; Compose v2 is not on every machine), deploy/nginx.conf, and the Dockerfile's structure. The image
itself is built and run in tests/test_image.py."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

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


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") or not raw.strip():
            continue
        current += raw.rstrip().removesuffix("\\") + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            keyword, _, rest = current.strip().partition(" ")
            lines.append((keyword.upper(), " ".join(rest.split())))
            current = ""
    return lines


def test_dockerfile_base_is_an_argument_of_both_stages_and_the_builder_has_a_workdir():
    steps = dockerfile_instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    froms = [i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"]
    assert [steps[i][1] for i in froms] == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]
    assert "WORKDIR" in [keyword for keyword, _ in steps[froms[0]:froms[1]]]


def test_dockerfile_final_stage_copies_a_built_venv_and_leaves_no_wheels_behind():
    steps = dockerfile_instructions()
    final = steps[[i for i, (keyword, _) in enumerate(steps) if keyword == "FROM"][1]:]
    copies = [rest for keyword, rest in final if keyword == "COPY" and rest.startswith("--from=")]
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert not any("wheel" in rest or "pip install" in rest for keyword, rest in final if keyword == "RUN")
    # The slow llama.cpp build comes before what changes often (requirements.txt, the code), for the layer cache.
    text = [f"{keyword} {rest}" for keyword, rest in steps]
    local = next(i for i, step in enumerate(text) if "requirements-local.txt" in step)
    assert local < next(i for i, step in enumerate(text) if "COPY requirements.txt" in step)


def test_dockerfile_healthcheck_probes_the_configured_port_and_the_app_runs_unprivileged():
    steps = dict((keyword, rest) for keyword, rest in dockerfile_instructions() if keyword in ("HEALTHCHECK", "USER"))
    check = steps["HEALTHCHECK"]
    assert "CMD [" not in check  # shell form: $PORT is read when the probe runs, not fixed at build
    assert "127.0.0.1:${PORT:-5000}/healthz" in check
    assert steps["USER"] == "chatbot"
    assert "--uid 10001" in (ROOT / "Dockerfile").read_text()


def test_nginx_accepts_the_configuration_where_nginx_exists(tmp_path):
    """`nginx -t` on deploy/nginx.conf inside an http block, as the image's conf.d include puts it (the app names are
    variables, so nothing is resolved here)."""
    binary = shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if Path(path).exists()), None)
    if binary is None:
        pytest.skip("no nginx binary")
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
                    f"http {{\n    access_log off;\n    include {ROOT / 'deploy' / 'nginx.conf'};\n}}\n")
    result = subprocess.run([binary, "-t", "-p", str(tmp_path), "-c", str(main), "-e", "stderr"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr
