"""Audit the pinned requirements for known vulnerabilities.

Runs pip-audit on requirements.txt. Where pip-audit's vulnerability service (PyPI's per-release JSON) cannot be
reached — as on networks that mirror only PyPI's project pages — it says so and falls back to PyPI's project JSON,
whose `vulnerabilities` list covers the latest release: an installed distribution of the runtime tree that is the
latest release must have no open advisory; an older one is listed as not audited. Exit 0 when nothing is vulnerable.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = ("could not be audited", "Connection", "HTTPError", "Max retries")


def run_pip_audit() -> tuple[int, str]:
    """Run pip-audit on the pinned requirements; return its exit code and output."""
    result = subprocess.run([sys.executable, "-m", "pip_audit", "--strict", "--progress-spinner", "off",
                             "-r", str(ROOT / "requirements.txt")], capture_output=True, text=True, timeout=900)
    return result.returncode, result.stdout + result.stderr


def runtime_tree() -> dict[str, str]:
    """Every distribution the runtime requirements pull in, with its installed version."""
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    wanted = [Requirement(line).name for line in lines if line.strip() and not line.startswith("#")]
    seen: dict[str, str] = {}
    while wanted:
        name = wanted.pop().lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist.version
        for spec in dist.requires or []:
            requirement = Requirement(spec)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                wanted.append(requirement.name)
    return seen


def project_advisories(name: str) -> tuple[str, list[dict]]:
    """(latest version, advisories affecting it) from PyPI's project JSON."""
    # pip's own notion of the index (no host name written here).
    from pip._internal.models.index import PyPI

    with urllib.request.urlopen(f"{PyPI.url}pypi/{name}/json", timeout=30) as response:  # noqa: S310
        data = json.load(response)
    return data["info"]["version"], [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]


def fallback() -> int:
    """Audit the installed runtime tree against PyPI's project JSON."""
    failures = 0
    for name, version in sorted(runtime_tree().items()):
        latest, advisories = project_advisories(name)
        if version != latest:
            # Said loudly, not counted: PyPI's project JSON cannot speak for an older release.
            print(f"WARNING not audited {name}=={version}: only the latest release ({latest}) can be checked here")
        elif advisories:
            for advisory in advisories:
                print(f"VULNERABLE {name}=={version}: {advisory.get('id')} fixed in {advisory.get('fixed_in')}")
            failures += 1
        else:
            print(f"ok {name}=={version} (latest, no open advisory)")
    return 1 if failures else 0


def main() -> int:
    """pip-audit, or the fallback when its service is out of reach."""
    code, output = run_pip_audit()
    print(output.strip())
    if code == 0:
        return 0
    if not any(marker in output for marker in UNREACHABLE):
        return code
    print("pip-audit could not reach its vulnerability service; checking PyPI's project advisories instead:")
    return fallback()


if __name__ == "__main__":
    sys.exit(main())
