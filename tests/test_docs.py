"""The documentation: the generated references match the code, and the site builds with
warnings as errors (a broken link or #anchor fails)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from conftest import REPO


def docs_reference():
    path = os.path.join(REPO, 'tools', 'docs_reference.py')
    spec = importlib.util.spec_from_file_location('docs_reference', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_generated_references_are_what_the_code_generates():
    reference = docs_reference()
    pages = reference.generated()
    assert set(pages) == {'docs/reference/parameters.md', 'docs/reference/topics.md', 'README.md'}
    assert reference.stale(pages) == [], 'run python tools/docs_reference.py'
    assert reference.generated() == pages  # deterministic


def test_check_names_a_stale_page(capsys, monkeypatch):
    reference = docs_reference()
    pages = reference.generated()
    changed = {**pages, 'docs/reference/topics.md': pages['docs/reference/topics.md'] + 'x'}
    monkeypatch.setattr(reference, 'generated', lambda: changed)
    assert reference.main(['--check']) == 1
    assert 'docs/reference/topics.md is stale' in capsys.readouterr().err


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    done = subprocess.run(
        [sys.executable, '-m', 'mkdocs', 'build', '--strict', '--site-dir', str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert os.path.exists(tmp_path / 'reference' / 'parameters' / 'index.html')
