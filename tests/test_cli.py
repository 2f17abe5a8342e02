"""The `rnnlit` console script: help, bad arguments, a missing PyTorch, and a real (tiny) benchmark run.

`rnnlit()` and `run()` are shared with the other `test_cli_*.py` files."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest

RNNLIT = shutil.which('rnnlit') or pytest.fail('the rnnlit console script is not installed (pip install -e .)')
ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, 'PYTHONPATH': str(ROOT), 'MPLBACKEND': 'Agg'}   # this checkout's rnnlit


def rnnlit(*args, timeout=120, **kw):
    "Run the real console script; `CompletedProcess` with text output."
    return subprocess.run([RNNLIT, *map(str, args)], capture_output=True, text=True, env=ENV,
                          timeout=timeout, **kw)


def run(*args, pre=''):
    "Run `rnnlit.cli.main` in a fresh interpreter after the Python statements `pre`."
    code = f"import sys; {pre}from rnnlit.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, '-c', code, *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=120)


def one_line(r, code=1):
    "The command failed with exit status `code` and said why in one line, without a traceback."
    assert r.returncode == code, (r.returncode, r.stderr)
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr.strip()


def test_help_lists_every_bench_option():
    r = rnnlit('bench', '--help')
    assert r.returncode == 0
    for opt in ('--device', '--rounds', '--threads', '--budget', '--size', '--out', '--cell'): assert opt in r.stdout


@pytest.mark.parametrize('args', [[], ['nope'], ['bench', '--size', '1,2,3'], ['bench', '--size', '1,2,3,4,0'],
                                  ['bench', '--rounds', 'x'], ['bench', '--threads', '0'], ['bench', '--device', 'tpu'],
                                  ['bench', '--budget', '-1'], ['bench', '--size', '1,2,3,4,5,x'],
                                  ['bench', '--cell', 'tanh']])
def test_bad_arguments_one_line_exit_2(args):
    r = run(*args)
    assert r.returncode == 2 and 'Traceback' not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith('rnnlit')   # argparse's one-line 'rnnlit ...: error: ...'


def test_bench_without_torch_says_how_to_install_it():
    r = run('bench', pre="sys.modules['torch'] = None; ")
    assert one_line(r) == 'rnnlit bench: needs torch; install it with: pip install torch'


def test_bench_writes_results(tmp_path):
    out = tmp_path/'r.json'
    r = rnnlit('bench', '--rounds', '2', '--budget', '0.05', '--size', '5,2,7,6,7,ids', '--size', '4,3,5,8,6',
               '--out', out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert [row['size'] for row in res['rows']] == [[5, 2, 7, 6, 7], [4, 3, 5, 8, 6]]
    assert all(row['agreement'] < 1e-4 and row['ratio'] > 0 for row in res['rows'])
    assert res['machine']['cpu'] and res['command'].startswith('rnnlit bench')


def test_bench_times_a_gated_cell(tmp_path):
    "`--cell lstm`: chapter 8's comparison with nn.LSTM, agreement checked first, written like appendix A's."
    out = tmp_path/'g.json'
    r = rnnlit('bench', '--cell', 'lstm', '--rounds', '1', '--budget', '0.02', '--size', '4,2,5,6,5,ids',
               '--out', out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert [(row['cell'], row['size']) for row in res['rows']] == [('lstm', [4, 2, 5, 6, 5])]
    assert res['rows'][0]['agreement'] < 1e-3 and res['command'].startswith('rnnlit bench --cell lstm')


def test_bench_recall_quick_writes_the_sweep_and_its_plot(tmp_path):
    "`--recall --quick`: chapter 8's recall sweep, shortened; every model at every T, with its command and plot."
    out = tmp_path/'r.json'
    r = rnnlit('bench', '--recall', '--quick', '--threads', '1', '--out', out)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert {(row['run'], row['T']) for row in res['rows']} == {(k, T) for k in res['runs'] for T in (5, 10)}
    assert all(0 <= row['accuracy'] <= 1 and 1 <= row['steps'] <= 20 for row in res['rows'])
    assert res['command'].startswith('rnnlit bench --recall') and out.with_suffix('.png').stat().st_size > 0


def test_bench_recall_refuses_what_it_does_not_combine_with():
    for extra in (['--cell', 'lstm'], ['--device', 'cpu'], ['--training']):
        assert 'does not combine with' in one_line(run('bench', '--recall', *extra))


def test_bench_stack_and_depth_write_their_results(tmp_path):
    "Chapter 9's two result files come from the command: `--stack` (timed, checked first) and `--depth --quick`."
    r = rnnlit('bench', '--stack', '--rounds', '1', '--budget', '0.02', '--size', '4,2,5,6,5,ids',
               '--out', tmp_path/'s.json')
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path/'s.json').read_text())
    assert {(row['num_layers'], row['bidirectional']) for row in res['rows']} == {(2, False), (2, True)}
    assert res['command'].startswith('rnnlit bench --stack')
    r = rnnlit('bench', '--depth', '--quick', '--threads', '1', '--out', tmp_path/'d.json')
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path/'d.json').read_text())
    assert [row['layers'] for row in res['rows']] == [1, 2] and res['command'].startswith('rnnlit bench --depth')


def test_bench_modes_are_one_at_a_time():
    for args in (['--recall', '--depth'], ['--stack', '--training'], ['--depth', '--cell', 'gru']):
        assert 'does not combine with' in one_line(run('bench', *args))


def test_bench_gated_cell_only_on_the_cpu_comparison():
    r = run('bench', '--cell', 'gru', '--device', 'cpu')
    assert 'does not combine with --device or --training' in one_line(r)
