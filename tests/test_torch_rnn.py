"""Chapter 7: weights moved between rnnlit and PyTorch, three implementations agreeing, the sweep's plumbing."""
import json, subprocess, sys
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from rnnlit import RNN
from rnnlit.bptt import torch_forward
from rnnlit.torch_rnn import (TorchRNN, from_torch, md_table, plot_sweep, sweep_table, three_way, time_call,
                              timing_problem, to_torch, torch_grads, torch_params)

CUDA = torch.cuda.is_available()


@st.composite
def problems(draw, dtype=np.float64):
    T, B = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    n_in, H, n_out = (draw(st.integers(1, 7)) for _ in range(3))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    rnn = RNN(n_in, H, n_out, seed=seed, dtype=dtype)
    X = rng.integers(0, n_in, (T, B)) if draw(st.booleans()) else rng.standard_normal((T, B, n_in)).astype(dtype)
    h0 = rng.standard_normal((B, H)).astype(dtype) if draw(st.booleans()) else None
    return rnn, X, rng.integers(0, n_out, (T, B)), h0


@settings(max_examples=40, deadline=None)
@given(problems(), st.sampled_from([np.float32, np.float64]))
def test_round_trip_is_lossless(p, dtype):
    rnn = RNN(p[0].n_in, p[0].n_hidden, p[0].n_out, seed=1, dtype=dtype)
    back = from_torch(to_torch(rnn))
    assert back.dtype == rnn.dtype
    for k, v in rnn.params.items():
        np.testing.assert_array_equal(back.params[k], v)
        assert back.params[k].flags.c_contiguous


@settings(max_examples=60, deadline=None)
@given(problems())
def test_three_implementations_agree_in_float64(p):
    "Loss, logits and every gradient: max absolute difference below 1e-10 (three_way reports relative errors)."
    rnn, X, Y, h0 = p
    loss, grads, _ = rnn.loss_and_grads(X, Y, h0)
    logits = rnn.forward(X, h0)[0]
    Xt, h0t = torch.as_tensor(X), None if h0 is None else torch.as_tensor(h0)
    P = torch_params(rnn)
    z, _ = torch_forward(P, Xt, h0t)
    l = F.cross_entropy(z.reshape(-1, rnn.n_out), torch.as_tensor(Y).reshape(-1)); l.backward()
    m = to_torch(rnn)
    zm, _ = m(X, h0)
    lm = F.cross_entropy(zm.reshape(-1, rnn.n_out), torch.as_tensor(Y).reshape(-1)); lm.backward()
    for loss_t, z_t, g_t in ((l, z, {k: v.grad for k, v in P.items()}), (lm, zm, torch_grads(m))):
        assert abs(loss_t.item() - loss) < 1e-10
        assert np.abs(z_t.detach().numpy() - logits).max() < 1e-10
        for k in grads: assert np.abs(g_t[k].numpy() - grads[k]).max() < 1e-10, k
    np.testing.assert_allclose(m.rnn.bias_hh_l0.grad.numpy(), grads['b_h'], atol=1e-12)   # both biases get all of it
    errs = three_way(rnn, X, Y, h0)
    assert max(max(e.values()) for e in errs.values()) < 1e-9


@settings(max_examples=20, deadline=None)
@given(problems(dtype=np.float32))
def test_three_implementations_agree_in_float32(p):
    rnn, X, Y, h0 = p
    assert max(max(e.values()) for e in three_way(rnn, X, Y, h0).values()) < 1e-4


def test_from_torch_sums_the_two_biases():
    torch.manual_seed(0)
    m = TorchRNN(3, 4, 2, dtype=torch.float64)
    r = from_torch(m)
    np.testing.assert_array_equal(r.params['b_h'], (m.rnn.bias_ih_l0 + m.rnn.bias_hh_l0).detach().numpy())
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    np.testing.assert_allclose(r.forward(x)[0], m(x)[0].detach().numpy(), atol=1e-12)


def test_from_torch_rejects_other_rnns():
    m = TorchRNN(3, 4, 2)
    m.rnn = torch.nn.RNN(3, 4, nonlinearity='relu')
    with pytest.raises(ValueError, match='tanh nn.RNN'): from_torch(m)
    m.rnn = torch.nn.RNN(3, 4, num_layers=2)
    with pytest.raises(ValueError, match='one-layer'): from_torch(m)
    with pytest.raises(TypeError, match='float32 or float64'): from_torch(TorchRNN(3, 4, 2, dtype=torch.float16))


def test_import_without_torch_says_how_to_install():
    code = "import sys; sys.modules['torch'] = None\ntry:\n import rnnlit.torch_rnn\nexcept ImportError as e: print(e)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert 'pip install torch' in r.stdout and 'pip install ".[torch]"' in r.stdout, r.stdout + r.stderr


def test_quick_sweep_on_the_cpu_from_the_command_line(tmp_path):
    out = tmp_path/'s.json'
    r = subprocess.run(['rnnlit', 'bench', '--device', 'cpu', '--quick', '--out', str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert {row['axis'] for row in res['rows']} == {'T', 'B', 'H'}
    assert all(set(row['ms']) == {'numpy', 'scratch', 'nn.RNN'} and row['agreement'] < 1e-4 for row in res['rows'])
    assert out.with_suffix('.png').stat().st_size > 10_000


def test_cuda_without_a_gpu_is_a_one_line_error():
    if CUDA: pytest.skip('a GPU is present')
    r = subprocess.run(['rnnlit', 'bench', '--device', 'cuda'], capture_output=True, text=True)
    assert r.returncode == 1 and r.stderr.strip() == 'rnnlit bench: --device cuda, but PyTorch sees no CUDA device'


@pytest.mark.skipif(not CUDA, reason='needs a CUDA GPU')
def test_three_implementations_agree_on_the_gpu():
    rng = np.random.default_rng(0)
    rnn = RNN(7, 12, 7, seed=3, dtype=np.float64)
    errs = three_way(rnn, rng.integers(0, 7, (9, 4)), rng.integers(0, 7, (9, 4)), device='cuda')
    assert max(max(e.values()) for e in errs.values()) < 1e-10


def test_torch_rnn_does_not_import_the_appendix():
    "Appendix A comes after chapter 7: `rnnlit.torch_rnn` must not import `rnnlit.bench`."
    code = "import sys, rnnlit.torch_rnn; print('rnnlit.bench' in sys.modules)"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.stdout.strip() == 'False', r.stdout + r.stderr


def test_timing_problem_checks_before_anything_is_timed():
    p = timing_problem(4, 2, 5, 6, 5, ids=True)
    assert p.agreement < 1e-4 and p.Xt.shape == (4, 2, 5) and p.Xt.dtype == torch.float32   # one-hot for nn.RNN
    assert p.Yt.shape == (8,) and p.X.shape == (4, 2)
    with pytest.raises(AssertionError, match='implementations disagree'): timing_problem(4, 2, 5, 6, 5, tol=0)


def test_time_call_returns_the_median_of_timed_calls():
    calls = []
    t = time_call(lambda: calls.append(1), min_time=0.01, warmup=2)
    assert 0 <= t < 0.01 and len(calls) >= 2 + 5          # warm-up calls, then at least five timed ones


def _sweep_result(cuda=False):
    impls = ['numpy', 'scratch', 'nn.RNN'] + (['scratch+graph', 'nn.RNN tf32'] if cuda else [])
    rows = [dict(T=T, B=B, H=H, axis=ax, ms={k: 1.0 + i for i, k in enumerate(impls)})
            for ax, (T, B, H) in [('T', (5, 2, 8)), ('T', (10, 2, 8)), ('B', (10, 1, 8)), ('B', (10, 2, 8)),
                                   ('H', (10, 2, 4)), ('H', (10, 2, 8))] + ([('small', (3, 1, 4))] if cuda else [])]
    info = dict(device='dev', torch='x', cuda='13.0' if cuda else None, cudnn=1 if cuda else None)
    return dict(date='2026-01-01', info=info, base=[10, 2, 8], rows=rows)


@pytest.mark.parametrize('cuda', [False, True])
def test_sweep_tables_are_narrow_and_complete(cuda):
    res = _sweep_result(cuda)
    ms, ratio = sweep_table(res, 'ms'), sweep_table(res, 'ratio')
    n_impl = 5 if cuda else 3
    assert ms.splitlines()[0].count('|') == 3 + n_impl + 1 and ratio.splitlines()[0].count('|') == 3 + n_impl
    assert len(ms.splitlines()) == 2 + len({(r['T'], r['B'], r['H']) for r in res['rows']})   # each size once
    assert 'nn.RNN' not in ratio.splitlines()[0].replace('nn.RNN tf32', '')
    assert ms in sweep_table(res) and ratio in sweep_table(res)
    with pytest.raises(ValueError, match='`kind`'): sweep_table(res, 'wide')


def test_md_table():
    assert md_table(['a', 'b'], [[1, 'x']]) == '| a | b |\n|---|---|\n| 1 | x |'


@pytest.mark.parametrize('cuda', [False, True])
def test_sweep_plot_fits_the_page_and_can_be_read(cuda, tmp_path):
    "At most 10 inches wide, no text under 9 points, and still written to a file for `rnnlit bench`."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig = plot_sweep(_sweep_result(cuda), tmp_path/'s.png')
    assert fig.get_size_inches()[0] <= 10 and (tmp_path/'s.png').stat().st_size > 10_000
    sizes = [t.get_fontsize() for t in fig.findobj(matplotlib.text.Text) if t.get_text().strip()]
    assert sizes and min(sizes) >= 9, sorted(set(sizes))
    plt.close(fig)


def test_one_interface_refuses_unknown_cells():
    "TorchRNN names the cells it knows; to_torch refuses a model that is not one of rnnlit's cells."
    with pytest.raises(ValueError, match=r"`cell`: expected one of 'rnn', 'lstm', 'gru'; got 'tanh'"):
        TorchRNN(3, 4, 2, cell='tanh')
    with pytest.raises(TypeError, match=r"`model`: expected an RNN, LSTM or GRU; got dict"): to_torch({})
def test_tf32_sets_both_flags_and_restores_the_previous_values():
    from rnnlit.torch_rnn import tf32
    flags = lambda: (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    before = flags()
    for enabled in (True, False):
        with tf32(enabled): assert flags() == (enabled, enabled)
        assert flags() == before                          # the previous values, not False
    with pytest.raises(RuntimeError):
        with tf32(True): raise RuntimeError
    assert flags() == before


def test_a_tiny_sweep_names_the_hidden_size_n_hidden_and_records_its_provenance():
    import inspect
    import rnnlit
    from rnnlit.torch_rnn import sweep, time_config
    assert 'n_hidden' in inspect.signature(time_config).parameters
    assert 'H' not in inspect.signature(time_config).parameters
    lines = []
    res = sweep('cpu', base=(3, 2, 4), grid={'T': [3], 'B': [2], 'H': [4]}, log=lines.append)
    assert len(res['rows']) == 3 and {r['axis'] for r in res['rows']} == {'T', 'B', 'H'}
    assert res['rows'][0]['H'] == 4 and 'n_h=4' in lines[0] and len(lines) == 1   # measured once
    assert res['rnnlit'] == rnnlit.__version__ and 'commit' in res
    assert res['commit'] is None or len(res['commit'].split('+')[0]) == 40
    json.dumps(res)


def _gpu_findings_cell():
    "The chapter's cell that reads a GPU result file, as a function of the file's contents."
    from pathlib import Path
    from rnnlit.torch_rnn import _configs
    nb = json.loads((Path(__file__).resolve().parents[1]/'nbs'/'07_torch_rnn.ipynb').read_text())
    src = next(''.join(c['source']) for c in nb['cells'] if c.get('id') == '4653491f')
    ns = dict(np=np, _configs=_configs, gpu=None)
    exec(src, ns)
    return ns['_gpu_findings']


def test_the_gpu_reading_follows_the_file_and_asserts_nothing_about_it():
    "Re-measuring must not break the docs build: any plausible file gives a reading."
    import copy
    from pathlib import Path
    findings = _gpu_findings_cell()
    gpu = json.loads((Path(__file__).resolve().parents[1]/'nbs'/'results'/'sweep_cuda.json').read_text())
    text = findings(gpu)
    assert 'cuDNN' in text and 'exercise 2' not in text
    vs = [r['ms']['scratch+graph'] / r['ms']['nn.RNN'] for r in gpu['rows']]
    assert ('looks wrong' in text) == (max(vs) > 3 * np.median(vs))
    calm = copy.deepcopy(gpu)                             # the same file without an outlier
    for r in calm['rows']: r['ms']['scratch+graph'] = min(r['ms']['scratch+graph'], r['ms']['nn.RNN'])
    assert 'looks wrong' not in findings(calm)
    rng = np.random.default_rng(0)
    for _ in range(20):                                   # re-measured files: anything may move
        other = copy.deepcopy(gpu)
        for r in other['rows']:
            for k in r['ms']: r['ms'][k] *= rng.uniform(0.3, 3)
        assert findings(other)
