"""The README tells the truth: it is what `nbs/index.ipynb` produces now (from today's settings.ini, benchmark
result file and notebooks), its install commands can work, its test command is the one CI runs, and its training
command leaves the clone clean."""
import json, re, subprocess
from configparser import ConfigParser
from conftest import ROOT, docs_build

README = ROOT/'README.md'


def _names(key: str) -> list[str]:
    "The distribution names in one of settings.ini's requirement lists."
    c = ConfigParser(delimiters=['=']); c.read(ROOT/'settings.ini', encoding='utf-8')
    return [re.split(r'[<>=!~;\[ ]', r)[0] for r in c['DEFAULT'][key].split()]


def test_readme_is_what_index_produces_now(tmp_path):
    "Run index.ipynb afresh: its computed sentences and chapter table must be the README's, word for word."
    ok, seconds, err = docs_build.execute_one(ROOT/'nbs'/'index.ipynb', tmp_path/'index.ipynb')
    assert ok, f'index.ipynb failed after {seconds:.0f}s:\n{err}'
    assert README.read_text() == docs_build.make_readme(tmp_path/'index.ipynb'), (
        'README.md is not what nbs/index.ipynb produces now: refresh its outputs with `python docs/build.py '
        '--exec-one nbs/index.ipynb nbs/index.ipynb && nbdev_clean --fname nbs/index.ipynb`, then run '
        '`python docs/build.py --readme`')


def test_readme_names_every_dependency():
    text = README.read_text()
    for name in _names('requirements') + _names('torch_requirements'): assert f'`{name}`' in text, name


def test_readme_speed_claim_comes_from_the_benchmark_result():
    ratios = [r['ratio'] for r in json.loads((ROOT/'nbs'/'results'/'bench_cpu.json').read_text())['rows']]
    assert f'took {min(ratios):.2f} to {max(ratios):.2f} times' in README.read_text()


def test_readme_never_installs_rnnlit_from_the_package_index():
    "rnnlit is not on PyPI: every `pip install` of it names the repository or a local folder."
    for cmd in re.findall(r'pip install [^`\n&]*', README.read_text()):
        for arg in cmd.split()[2:]:
            arg = arg.strip('"\'')
            assert not re.match(r'rnnlit\b', arg) or '@ git+' in cmd, f'cannot work, rnnlit is not on PyPI: {cmd}'


def test_readme_test_command_is_what_ci_runs():
    command = 'pip install -e ".[dev]" && pytest'
    assert f'```sh\n{command}\n```' in README.read_text()
    assert '\n' + command + '\n' in (ROOT/'.ci'/'run').read_text()


def test_training_output_is_ignored_by_git():
    "`rnnlit train` writes `rnnlit-run/` where it runs: in a clone, git must not see it."
    for path in ('rnnlit-run/checkpoint.npz', 'rnnlit-run/loss.png'):
        assert subprocess.run(['git', 'check-ignore', '-q', path], cwd=ROOT).returncode == 0, path
