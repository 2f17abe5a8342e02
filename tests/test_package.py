"""Packaging: an sdist and a wheel built from it, installed into a clean virtual environment without torch."""
import subprocess, sys, tarfile, venv
from conftest import ROOT


def _run(*args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, args))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


def test_wheel_from_sdist_installs_and_works_without_torch(tmp_path):
    dist = tmp_path/'dist'
    _run(sys.executable, '-m', 'build', '--outdir', dist, ROOT)      # the sdist, then a wheel built from it
    (sdist,), (whl,) = dist.glob('rnnlit-*.tar.gz'), dist.glob('rnnlit-*.whl')
    names = tarfile.open(sdist).getnames()
    assert any(n.endswith('/settings.ini') for n in names), 'MANIFEST.in must include settings.ini'
    venv.create(tmp_path/'env', with_pip=True)
    py = tmp_path/'env'/'bin'/'python'
    _run(py, '-m', 'pip', 'install', '-q', whl)
    code = ("import importlib.util, sys, numpy as np, rnnlit\n"
            "assert importlib.util.find_spec('torch') is None, 'torch is installed'\n"
            "assert 'torch' not in sys.modules\n"
            "h = rnnlit.RNN(3, 4, 5).step(np.array([0, 2]))\n"
            "assert h.shape == (2, 4) and h.dtype == np.float32\n"
            "assert len(rnnlit.load_text('corpus').encode()) > 50_000 and 'feeling under the weather' in rnnlit.load_text('idioms')\n"
            "print(rnnlit.__version__, rnnlit.__file__)")
    out = _run(py, '-c', code, cwd=tmp_path)            # run outside the checkout: the installed package
    assert str(tmp_path/'env') in out
    assert 'train a language model' in _run(tmp_path/'env'/'bin'/'rnnlit', '--help')    # the console script
