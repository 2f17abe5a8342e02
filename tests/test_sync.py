"""The generated files match their sources: `rnnlit/` and the notebooks (nbdev), README.md (index.ipynb)."""
import shutil, subprocess, sys
from pathlib import Path
from conftest import ROOT, docs_build

BIN = Path(sys.executable).parent


def _tree(p: Path) -> dict:
    return {str(f.relative_to(p)): f.read_bytes() for f in sorted(p.rglob('*'))
            if f.is_file() and '__pycache__' not in f.parts and '.ipynb_checkpoints' not in f.parts}


def _copy_project(tmp_path):
    for name in ('settings.ini', 'nbs', 'rnnlit'):
        src = ROOT/name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/name)
    return tmp_path


def _diff(before, after):
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def test_export_would_not_change_the_package(tmp_path):
    proj = _copy_project(tmp_path)
    before = _tree(proj/'rnnlit')
    subprocess.run([BIN/'nbdev_export'], cwd=proj, check=True, capture_output=True)
    changed = _diff(before, _tree(proj/'rnnlit'))
    assert not changed, f"nbdev_export changes {changed}: edit the notebooks, run nbdev_export, commit rnnlit/"


def test_clean_would_not_change_a_notebook(tmp_path):
    proj = _copy_project(tmp_path)
    before = _tree(proj/'nbs')
    subprocess.run([BIN/'nbdev_clean'], cwd=proj, check=True, capture_output=True)
    changed = _diff(before, _tree(proj/'nbs'))
    assert not changed, f"nbdev_clean changes {changed}: run nbdev_clean and commit the notebooks"


def test_readme_is_generated_from_index():
    want = docs_build.make_readme(ROOT/'nbs'/'index.ipynb')
    assert (ROOT/'README.md').read_text() == want, "README.md is stale: run `python docs/build.py --readme`"
