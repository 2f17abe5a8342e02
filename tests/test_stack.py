"""Chapter 9's `Stack`: its BPTT against finite differences and against PyTorch's own multi-layer,
bidirectional modules (float64, 1e-10) over random cells, depths, directions, shapes, inputs, states and
masks; its validation; the round trip through `to_torch`/`from_torch`; and the `Trainer`, checkpoints and
`rnnlit train` with `--layers`, `bidirectional` refused."""
import subprocess, sys
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from rnnlit import Stack, RNN, LSTM, GRU, numerical_grads, rel_error
from rnnlit.gated import CELLS
from rnnlit.train import Trainer, load_checkpoint
from rnnlit.data import load_text


def close(a, b, rtol, atol):
    "Norm-wise relative error below `rtol`, or every entry within `atol` (a gradient that is 0)."
    return rel_error(a, b) < rtol or np.abs(np.asarray(a) - np.asarray(b)).max() < atol


def random_state(m, B, rng):
    s = tuple(0.5 * rng.standard_normal(a.shape) for a in m._check_state(None, B, m.state_names))
    return s[0] if len(s) == 1 else s


@st.composite
def problems(draw, max_T=4, max_size=3):
    "A float64 stack and a batch: floats or ids, a random state or none, a mask or none."
    cell = draw(st.sampled_from(sorted(CELLS)))
    L, bi = draw(st.integers(1, 3)), draw(st.booleans())
    T, B = draw(st.integers(1, max_T)), draw(st.integers(1, 3))
    n_in, n_h, n_out = (draw(st.integers(1, max_size)) for _ in range(3))
    n_out = max(n_out, 2)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    m = Stack(cell, n_in, n_h, n_out, num_layers=L, bidirectional=bi, seed=seed, dtype=np.float64)
    for k, v in m.params.items():                      # non-zero biases, so a lost one shows
        if k.startswith('b_'): v += 0.3 * rng.standard_normal(v.shape)
    ids = draw(st.booleans())
    X = rng.integers(0, n_in, (T, B)) if ids else rng.standard_normal((T, B, n_in))
    Y = rng.integers(0, n_out, (T, B))
    state = random_state(m, B, rng) if draw(st.booleans()) else None
    mask = None
    if draw(st.booleans()):
        mask = rng.random((T, B)) < 0.6; mask[rng.integers(T), rng.integers(B)] = True
    return m, X, Y, state, mask


def torch_reference(m, X, Y, state, mask):
    "Loss, logits, gradients and final state from `to_torch(m)` and torch.autograd."
    import torch, torch.nn.functional as F
    from rnnlit.torch_rnn import to_torch, torch_grads
    tm = to_torch(m)
    Xt = torch.as_tensor(X)
    Xt = Xt.double() if Xt.is_floating_point() else F.one_hot(Xt.long(), m.n_in).double()
    h0 = None if state is None else (tuple(map(torch.as_tensor, state)) if m.cell == 'lstm'
                                     else torch.as_tensor(state))
    H, last = tm.rnn(Xt, h0)
    z = tm.head(H)
    y = torch.as_tensor(Y).long()
    if mask is not None: y = y.masked_fill(~torch.as_tensor(mask), -100)
    loss = F.cross_entropy(z.reshape(-1, m.n_out), y.reshape(-1), ignore_index=-100)
    loss.backward()
    last = tuple(t.detach().numpy() for t in (last if m.cell == 'lstm' else (last,)))
    return loss.item(), z.detach().numpy(), {k: v.numpy() for k, v in torch_grads(tm).items()}, last


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_agrees_with_pytorch_modules(p):
    pytest.importorskip('torch')
    m, X, Y, state, mask = p
    loss, g, last = m.loss_and_grads(X, Y, state, mask)
    t_loss, t_logits, t_g, t_last = torch_reference(m, X, Y, state, mask)
    assert abs(loss - t_loss) <= 1e-10 * max(1.0, abs(t_loss))
    assert rel_error(m.forward(X, state)[0], t_logits) < 1e-10
    assert set(g) == set(t_g) == set(m.params)
    for k in g: assert close(g[k], t_g[k], 1e-10, 1e-14), k
    for a, b in zip(last if m.cell == 'lstm' else (last,), t_last): assert close(a, b, 1e-10, 1e-14)
    assert m.loss(X, Y, state, mask)[0] == loss


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(max_T=3, max_size=2))
def test_agrees_with_finite_differences(p):
    m, X, Y, state, mask = p
    g = m.loss_and_grads(X, Y, state, mask)[1]
    num = numerical_grads(m, X, Y, state, mask)
    for k in g: assert close(g[k], num[k], 1e-7, 1e-10), k


@pytest.mark.parametrize('cell', sorted(CELLS))
def test_one_layer_one_way_is_the_cell(cell):
    rng = np.random.default_rng(0)
    s = Stack(cell, 4, 3, 5, dtype=np.float64, seed=3)
    c = CELLS[cell](4, 3, 5, dtype=np.float64)
    c.params = {k: s.params[k if k in ('W_hy', 'b_y') else k + '_l0'].copy() for k in c.params}
    X, Y = rng.integers(0, 4, (6, 2)), rng.integers(0, 5, (6, 2))
    ls, gs, hs = s.loss_and_grads(X, Y)
    lc, gc, hc = c.loss_and_grads(X, Y)
    assert ls == lc
    for k in gc: np.testing.assert_array_equal(gs[k if k in ('W_hy', 'b_y') else k + '_l0'], gc[k])
    for a, b in zip(hs if cell == 'lstm' else (hs,), hc if cell == 'lstm' else (hc,)):
        np.testing.assert_array_equal(a[0], b)


def test_step_is_one_column_of_forward_one_way_only():
    "A one-way stack's `step` is the state `forward` reaches after one step; a two-way stack refuses to step."
    rng = np.random.default_rng(1)
    for cell in ('rnn', 'lstm', 'gru'):
        s = Stack(cell, 4, 3, 2, num_layers=3, dtype=np.float64)
        X = rng.integers(0, 4, (1, 2))
        got, want = s.step(X[0]), s.loss(X, np.zeros((1, 2), int))[1]
        for g, w in zip(got if cell == 'lstm' else (got,), want if cell == 'lstm' else (want,)):
            np.testing.assert_allclose(g, w, atol=1e-15)
        with pytest.raises(ValueError, match='bidirectional'):
            Stack(cell, 4, 3, 2, bidirectional=True).step(X[0])


def test_names_shapes_and_state_layout():
    s = Stack('gru', 5, 4, 3, num_layers=2, bidirectional=True)
    assert list(s.params) == [f'{k}_l{l}{r}' for l in (0, 1) for r in ('', '_reverse')
                              for k in ('W_xh', 'W_hh', 'b_xh', 'b_hh')] + ['W_hy', 'b_y']
    assert s.params['W_xh_l1'].shape == (8, 12) and s.params['W_hy'].shape == (8, 3)
    logits, H = s.forward(np.zeros((6, 2), int))
    assert logits.shape == (6, 2, 3) and H.shape == (6, 2, 8) and H.dtype == np.float32
    loss, g, h = s.loss_and_grads(np.zeros((6, 2), int), np.zeros((6, 2), int))
    assert h.shape == (4, 2, 4)
    c, hc = Stack('lstm', 5, 4, 3, num_layers=3).loss(np.zeros((2, 1), int), np.zeros((2, 1), int))
    assert isinstance(hc, tuple) and [a.shape for a in hc] == [(3, 1, 4)] * 2
    assert repr(s) == ("Stack('gru', n_in=5, n_hidden=4, n_out=3, num_layers=2, bidirectional=True, "
                       "dtype=float32)")


def test_validation_names_the_argument():
    with pytest.raises(ValueError, match="`cell`: expected one of 'rnn', 'lstm', 'gru'; got 'tanh'"):
        Stack('tanh', 2, 3, 2)
    with pytest.raises(ValueError, match='`num_layers`: expected a positive int; got 0'):
        Stack('rnn', 2, 3, 2, num_layers=0)
    with pytest.raises(TypeError, match='`bidirectional`: expected True or False'):
        Stack('rnn', 2, 3, 2, bidirectional='yes')
    with pytest.raises(TypeError, match='`dtype`'): Stack('rnn', 2, 3, 2, dtype=np.int32)
    s = Stack('lstm', 3, 4, 2, num_layers=2, bidirectional=True)
    X, Y = np.zeros((5, 2), int), np.zeros((5, 2), int)
    with pytest.raises(ValueError, match=r'`h0`: expected shape \(num_layers·D, B, n_hidden\) = '
                                         r'\(4, 2, 4\); got \(2, 4\)'):
        s.loss_and_grads(X, Y, (np.zeros((2, 4)), np.zeros((4, 2, 4))))
    with pytest.raises(TypeError, match=r'`state`: expected a pair \(h0, c0\)'):
        s.forward(X, np.zeros((4, 2, 4)))
    with pytest.raises(TypeError, match='`c0`: expected floats'):
        s.forward(X, (np.zeros((4, 2, 4)), np.zeros((4, 2, 4), int)))
    bad = np.zeros((4, 2, 4)); bad[1, 0, 2] = np.nan
    with pytest.raises(ValueError, match='`c0`: expected finite values'): s.forward(X, (None, bad))
    with pytest.raises(ValueError, match='`X`: token ids must lie in'): s.forward(X + 7)
    with pytest.raises(ValueError, match='`targets`: expected shape'): s.loss(X, Y[:3])
    with pytest.raises(ValueError, match='`mask`: expected at least one True'):
        s.loss(X, Y, mask=np.zeros((5, 2), bool))


def test_torch_round_trip_is_lossless():
    pytest.importorskip('torch')
    from rnnlit.torch_rnn import to_torch, from_torch
    for cell in CELLS:
        for dt in (np.float32, np.float64):
            s = Stack(cell, 3, 4, 2, num_layers=2, bidirectional=True, dtype=dt, seed=1)
            back = from_torch(to_torch(s))
            assert type(back) is Stack and back.num_layers == 2 and back.bidirectional
            assert list(back.params) == list(s.params)
            for k, v in s.params.items(): np.testing.assert_array_equal(back.params[k], v)
    one = Stack('rnn', 3, 4, 2)                           # a one-layer stack stays a Stack
    assert type(from_torch(to_torch(one))) is Stack


def test_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\nimport numpy as np\nfrom rnnlit import Stack\n"
            "s = Stack('lstm', 3, 4, 2, num_layers=2, bidirectional=True)\n"
            "print(s.loss_and_grads(np.zeros((3, 2), int), np.zeros((3, 2), int))[0] > 0)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == 'True', r.stderr


def test_trainer_with_layers_resumes_exactly(tmp_path):
    text = load_text('corpus')[:20000]
    t = Trainer(text, cell='lstm', layers=2, hidden=8, seq_len=8, batch=4)
    assert type(t.rnn) is Stack and t.rnn.num_layers == 2 and t.h[0].shape == (2, 4, 8)
    t.fit(3, progress=False); t.save(tmp_path/'c.npz'); t.fit(2, progress=False)
    r = Trainer.resume(tmp_path/'c.npz', text); r.fit(2, progress=False)
    assert r.losses == t.losses
    for k, v in t.rnn.params.items(): np.testing.assert_array_equal(r.rnn.params[k], v)
    ck = load_checkpoint(tmp_path/'c.npz')
    assert type(ck['rnn']) is Stack and ck['config']['layers'] == 2
    assert len(t.sample('The ', 10)) == 14


def test_trainer_refuses_bidirectional_and_bad_layers():
    with pytest.raises(ValueError, match='`bidirectional`: a language model must not see the token'):
        Trainer(load_text('idioms'), bidirectional=True)
    with pytest.raises(ValueError, match='`layers`: expected a positive int; got 0'):
        Trainer(load_text('idioms'), layers=0)


def rnnlit(*args, cwd=None):
    return subprocess.run(['rnnlit', *args], capture_output=True, text=True, cwd=cwd)


def test_cli_layers_and_bidirectional(tmp_path):
    r = rnnlit('train', '--bidirectional', '--steps', '2', '--out', str(tmp_path/'bi'))
    assert r.returncode != 0 and r.stdout == '' and len(r.stderr.strip().splitlines()) == 1
    assert 'must not see the token it predicts' in r.stderr and 'Traceback' not in r.stderr
    r = rnnlit('train', '--layers', '0')
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    r = rnnlit('train', '--layers', '2', '--cell', 'gru', '--hidden', '8', '--seq-len', '8',
               '--batch', '4', '--steps', '4', '--no-progress', '--out', str(tmp_path/'run'))
    assert r.returncode == 0, r.stderr
    ck = load_checkpoint(tmp_path/'run'/'checkpoint.npz')
    assert type(ck['rnn']) is Stack and ck['rnn'].num_layers == 2 and ck['config']['cell'] == 'gru'
    r = rnnlit('train', '--resume', str(tmp_path/'run'/'checkpoint.npz'), '--layers', '3')
    assert r.returncode != 0 and 'was trained with --layers 2' in r.stderr
