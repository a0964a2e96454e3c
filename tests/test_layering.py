"""The apps stay in layers (campaigns > channels > audiences > permissions): a lower app never imports an upper
one (import-linter, with the contracts of pyproject.toml), nor names one where imports do not show it: in
`apps.get_model`, a URL name, or a template it includes, extends or links to. docs/architecture.md, "Layers
and hooks", says how a lower app asks what only an upper one knows."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["campaigns", "channels", "audiences", "permissions"]  # top first, as in pyproject.toml

# What names another app where no import shows it.
HIDDEN_EDGES = {
    "python": [
        re.compile(r"""get_model\(\s*["'](?P<app>\w+)["']"""),
        re.compile(r"""get_model\(\s*["'](?P<app>\w+)\."""),
        re.compile(r"""["'](?P<app>\w+):[\w-]+["']"""),  # a URL name in reverse(), redirect(), resolve_url()
    ],
    "template": [
        re.compile(r"""\{%\s*(?:include|extends)\s+["'](?P<app>\w+)/"""),
        re.compile(r"""\{%\s*url\s+["'](?P<app>\w+):"""),
        re.compile(r"""\bperms\.(?P<app>\w+)\."""),
    ],
}


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    # --no-cache: a stale cache would read the tree as it was.
    command = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"]
    return subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)


def upper_apps(app: str) -> set[str]:
    return set(LAYERS[: LAYERS.index(app)])


def hidden_edges(app: str) -> list[str]:
    """Each place where `app` names an app above it, as "file:line: text"."""
    above = upper_apps(app)
    found = []
    files = [(path, "python") for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts]
    files += [(path, "template") for path in (ROOT / "templates" / app).rglob("*.html")]
    files += [(path, "template") for path in (ROOT / app).rglob("templates/**/*.html")]
    for path, kind in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for pattern in HIDDEN_EDGES[kind]:
                for match in pattern.finditer(line):
                    if match.group("app") in above:
                        found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


@pytest.mark.parametrize("app", LAYERS[1:])
def test_a_lower_app_never_names_an_upper_one(app):
    assert hidden_edges(app) == []


def test_the_hidden_edge_check_sees_each_kind_of_edge(tmp_path, monkeypatch):
    # The check itself must not be blind: plant one edge of each kind in a copy and see each reported.
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "channels").mkdir()
    (tmp_path / "templates" / "channels").mkdir(parents=True)
    (tmp_path / "channels" / "edges.py").write_text(
        'Campaign = apps.get_model("campaigns", "Campaign")\nredirect("campaigns:list")\nreverse("channels:x")\n'
    )
    (tmp_path / "templates" / "channels" / "page.html").write_text(
        '{% include "campaigns/_badge.html" %}\n{% url \'campaigns:detail\' 1 %}\n{% include "channels/_x.html" %}\n'
        "{% if perms.campaigns.view_campaign %}\n"
    )

    assert len(hidden_edges("channels")) == 5  # the two naming channels itself are not edges
    assert hidden_edges("audiences") == []


def test_the_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_the_import_contracts_fail_when_a_lower_app_imports_an_upper_one(tmp_path):
    for name in [*LAYERS, "config"]:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    with open(tmp_path / "audiences" / "models.py", "a") as models:
        models.write("\nfrom campaigns.models import Campaign  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1
    assert "audiences.models -> campaigns.models" in result.stdout
