"""Appendix A: the benchmark's tables, its work count, a tiny real run, and the notebooks' GPU cells."""
import json
from pathlib import Path
import pytest
from rnnlit.bench import SIZES, bench_cpu, bench_table, bptt_flops, cpu_name, load_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT/'nbs'/'results'


def test_committed_result_file_renders_with_and_without_goals():
    res = load_results(RESULTS/'bench_cpu.json')
    plain, goals = bench_table(res), bench_table(res, goals=True)
    head = [l for l in plain.splitlines() if l.startswith('| (T')][0]
    assert 'goal' not in head and '✓' not in plain and '✗' not in plain     # chapter 3's table
    assert 'goal' in goals and ('✓' in goals or '✗' in goals)               # appendix A's
    assert res['date'] in plain and res['machine']['cpu'] in plain
    assert len([l for l in plain.splitlines() if l.startswith('| (')]) == len(res['rows']) + 1


def test_flop_count():
    assert bptt_flops(1, 1, 1, 1, 1, True) == 2 + 0 + 2 + 6
    T, B, n_in, n_h, n_out = 3, 2, 4, 5, 6
    N = T * B
    expected = 4 * N * n_in * n_h + (2 * N + 2 * (N - B) + 2 * N) * n_h ** 2 + 6 * N * n_h * n_out
    assert bptt_flops(T, B, n_in, n_h, n_out, False) == expected


def test_a_tiny_benchmark_runs_and_checks_agreement():
    lines = []
    res = bench_cpu([(4, 2, 5, 6, 5, True), (3, 2, 4, 5, 4, False)], rounds=2, budget=0.01, log=lines.append)
    assert len(res['rows']) == 2 and len(lines) == 2
    for r in res['rows']:
        assert r['agreement'] < 1e-4 and r['ratio_min'] <= r['ratio'] <= r['ratio_max']
    assert res['machine']['cpu'] == cpu_name()
    json.dumps(res)                                          # a result file can be written
    assert bench_table(res, goals=True).count('\n') == 2 + 2 + 1


@pytest.mark.parametrize('nb', ['07_torch_rnn.ipynb', '90_bench.ipynb'])
def test_cuda_cells_are_harmless_without_a_gpu(nb):
    "Jupyter's Run All ignores `#| cuda`: every such cell must check for a GPU itself."
    cells = json.loads((ROOT/'nbs'/nb).read_text())['cells']
    for c in cells:
        src = ''.join(c['source'])
        if c['cell_type'] == 'code' and src.startswith('#| cuda'):
            assert 'if torch.cuda.is_available():' in src and 'skipped' in src, src


@pytest.mark.parametrize('nb', sorted((ROOT/'nbs').glob('*.ipynb')) + sorted((ROOT/'nbs'/'solutions').glob('*.ipynb')),
                         ids=lambda p: str(p.relative_to(ROOT/'nbs')))
def test_code_lines_fit_the_page(nb):
    "Every line of code the site shows is at most 100 characters (hidden cells and `echo: false` cells aside)."
    shown = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
    shown = [s for s in shown if not s.startswith('#| hide') and '#| echo: false' not in s]
    long = [l for s in shown for l in s.splitlines() if len(l) > 100]
    assert not long, long


def test_sizes_without_a_goal_show_a_dash_not_none():
    res = load_results(RESULTS/'bench_cpu.json')
    res['rows'][0]['goal'] = None
    table = bench_table(res, goals=True)
    assert 'None' not in table and '| – |' in table


def test_new_result_files_record_the_rnnlit_version_and_commit():
    import rnnlit
    res = bench_cpu([(3, 2, 4, 5, 4, False)], rounds=1, budget=0.01, log=lambda s: None)
    assert res['rnnlit'] == rnnlit.__version__ and 'commit' in res
    assert f"rnnlit {rnnlit.__version__}" in bench_table(res)
    assert "version was not recorded" in bench_table(load_results(RESULTS/'bench_cpu.json'))


def test_appendix_a_times_with_chapter_6s_helper():
    import rnnlit.bench, rnnlit.train
    assert rnnlit.bench.time_call is rnnlit.train.time_call
