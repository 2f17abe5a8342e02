"""The `rnnlit` console script: help, bad arguments, a missing PyTorch, and a real (tiny) benchmark run."""
import json, shutil, subprocess, sys
import pytest

RNNLIT = shutil.which('rnnlit') or pytest.fail('the rnnlit console script is not installed (pip install -e .)')


def run(*args, pre=''):
    code = f"import sys; {pre}from rnnlit.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, '-c', code, *args], capture_output=True, text=True)


def test_help_lists_every_bench_option():
    r = subprocess.run([RNNLIT, 'bench', '--help'], capture_output=True, text=True)
    assert r.returncode == 0
    for opt in ('--device', '--rounds', '--threads', '--budget', '--size', '--out'): assert opt in r.stdout


@pytest.mark.parametrize('args', [[], ['nope'], ['bench', '--size', '1,2,3'], ['bench', '--size', '1,2,3,4,0'],
                                  ['bench', '--rounds', 'x'], ['bench', '--threads', '0'], ['bench', '--device', 'tpu']])
def test_bad_arguments_one_line_exit_2(args):
    r = run(*args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith('rnnlit')   # argparse's one-line 'rnnlit ...: error: ...'


def test_bench_without_torch_says_how_to_install_it():
    r = run('bench', pre="sys.modules['torch'] = None; ")
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    assert r.stderr.strip() == 'rnnlit bench: needs torch; install it with: pip install "rnnlit[torch]"'


def test_bench_writes_results(tmp_path):
    out = tmp_path/'r.json'
    r = subprocess.run([RNNLIT, 'bench', '--rounds', '2', '--budget', '0.05', '--size', '5,2,7,6,7,ids',
                        '--size', '4,3,5,8,6', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert [row['size'] for row in res['rows']] == [[5, 2, 7, 6, 7], [4, 3, 5, 8, 6]]
    assert all(row['agreement'] < 1e-4 and row['ratio'] > 0 for row in res['rows'])
    assert res['machine']['cpu'] and res['command'].startswith('rnnlit bench')
