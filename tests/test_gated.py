"""Chapter 8 over random shapes: the LSTM and the GRU step like they run, their BPTT agrees with finite
differences, with torch.autograd on a plain loop and with nn.LSTM / nn.GRU in float64, with states and
masks; their checks and messages are the RNN's."""
import subprocess, sys
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from rnnlit import RNN, LSTM, GRU, numerical_grads, rel_error
from rnnlit.gated import torch_gated_forward, torch_gated_loss_and_grads, state_grads
from rnnlit.torch_rnn import to_torch, from_torch, torch_grads


@st.composite
def problems(draw, max_T=7, max_B=4, max_size=6, cells=(LSTM, GRU)):
    "A float64 gated model with weights moved off their init, inputs (ids or floats), targets, state, mask."
    cls = draw(st.sampled_from(cells))
    T, B = draw(st.integers(1, max_T)), draw(st.integers(1, max_B))
    n_in, H, n_out = (draw(st.integers(1, max_size)) for _ in range(3))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    m = cls(n_in, H, n_out, seed=seed, dtype=np.float64)
    for p in m.params.values(): p += 0.3 * rng.standard_normal(p.shape)
    X = rng.integers(0, n_in, (T, B)) if draw(st.booleans()) else rng.standard_normal((T, B, n_in))
    state = None
    if draw(st.booleans()):
        h0 = 0.5 * rng.standard_normal((B, H))
        state = (h0, rng.standard_normal((B, H))) if cls is LSTM else h0
    mask = None
    if draw(st.booleans()):
        mask = rng.random((T, B)) < 0.5
        mask[rng.integers(T), rng.integers(B)] = True
    return m, X, rng.integers(0, n_out, (T, B)), state, mask


@settings(max_examples=60, deadline=None)
@given(problems())
def test_forward_is_step_T_times(p):
    m, X, _, state, _ = p
    logits, H = m.forward(X, state)
    s = state
    for t in range(len(X)):
        s = m.step(X[t], s)
        np.testing.assert_allclose(s[0] if isinstance(m, LSTM) else s, H[t], atol=1e-13, rtol=0)
    np.testing.assert_allclose(logits, H @ m.params['W_hy'] + m.params['b_y'], atol=1e-13, rtol=0)


@settings(max_examples=25, deadline=None)
@given(problems(max_T=5, max_B=3, max_size=4))
def test_bptt_matches_finite_differences(p):
    m, X, Y, state, mask = p
    _, grads, _ = m.loss_and_grads(X, Y, state, mask)
    fd = numerical_grads(m, X, Y, state, mask)    # chapter 3's, as it is: `loss(X, targets, state, mask)`
    for k in grads:
        ok = rel_error(fd[k], grads[k]) < 1e-6 or (np.abs(grads[k]).max() < 1e-12 and np.abs(fd[k]).max() < 1e-9)
        assert ok, (type(m).__name__, k, rel_error(fd[k], grads[k]))


@settings(max_examples=80, deadline=None)
@given(problems(max_T=12, max_B=5, max_size=9))
def test_bptt_matches_torch_autograd(p):
    m, X, Y, state, mask = p
    loss, grads, last = m.loss_and_grads(X, Y, state, mask)
    t_loss, t_grads, t_logits = torch_gated_loss_and_grads(m, X, Y, state, mask)
    assert abs(loss - t_loss) < 1e-10
    assert np.abs(m.forward(X, state)[0] - t_logits).max() < 1e-10
    for k in grads: assert rel_error(grads[k], t_grads[k]) < 1e-10, k
    assert m.loss(X, Y, state, mask)[0] == loss
    H = m.forward(X, state)[1]
    np.testing.assert_array_equal(last[0] if isinstance(m, LSTM) else last, H[-1])


@settings(max_examples=50, deadline=None)
@given(problems(max_T=10, max_B=5, max_size=8))
def test_bptt_matches_nn_modules(p):
    m, X, Y, state, mask = p
    tm = to_torch(m)                                    # chapter 7's one interface
    Xt = torch.tensor(X) if X.dtype.kind == 'f' else F.one_hot(torch.tensor(X), m.n_in).double()
    if state is None: ts = None
    elif isinstance(m, LSTM): ts = tuple(torch.tensor(s)[None] for s in state)
    else: ts = torch.tensor(state)[None]
    H, last = tm.rnn(Xt, ts)
    y = torch.tensor(Y)
    if mask is not None: y = y.masked_fill(~torch.tensor(mask), -100)
    F.cross_entropy(tm.head(H).reshape(-1, m.n_out), y.reshape(-1), ignore_index=-100).backward()
    _, grads, mine = m.loss_and_grads(X, Y, state, mask)
    tg = {k: v.numpy() for k, v in torch_grads(tm).items()}
    assert set(tg) == set(grads)
    for k in grads: assert rel_error(grads[k], tg[k]) < 1e-10, k
    assert rel_error(m.forward(X, state)[1], H.detach().numpy()) < 1e-10
    np.testing.assert_allclose(tm(X, state)[1].detach().numpy(), H.detach().numpy(), atol=0)
    if isinstance(m, LSTM): np.testing.assert_allclose(mine[1], last[1][0].detach().numpy(), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(problems(max_T=8, cells=(LSTM,)))
def test_state_grads_reach_the_initial_state(p):
    "δc_1 ⊙ f_1 is ∂L/∂c_0 and δa_1 W_hh^T is ∂L/∂h_0: the end of the walk, so every δ before it is checked."
    m, X, Y, state, mask = p
    B, n = X.shape[1], m.n_hidden
    rng = np.random.default_rng(0)
    h0, c0 = state if state is not None else (rng.standard_normal((B, n)), rng.standard_normal((B, n)))
    th, tc = torch.tensor(h0, requires_grad=True), torch.tensor(c0, requires_grad=True)
    P = {k: torch.tensor(v) for k, v in m.params.items()}
    y = torch.tensor(Y)
    if mask is not None: y = y.masked_fill(~torch.tensor(mask), -100)
    Xt = torch.tensor(X)
    F.cross_entropy(torch_gated_forward(P, Xt, (th, tc))[0].reshape(-1, m.n_out), y.reshape(-1),
                    ignore_index=-100).backward()
    d = state_grads(m, X, Y, (h0, c0), mask)
    _, (G, C, TC) = m._recur(*m._check(X, (h0, c0))[:2], (h0, c0))
    i, f, g, o = np.split(G[0], 4, axis=1)
    np.testing.assert_allclose(d['c'][0] * f, tc.grad.numpy(), atol=1e-12)
    # δa_1 from δh_1 and δc_1, as in (L3), then back through W_hh
    da = np.concatenate([d['c'][0] * g * i * (1 - i), d['c'][0] * c0 * f * (1 - f), d['c'][0] * i * (1 - g * g),
                         d['h'][0] * TC[0] * o * (1 - o)], 1)
    np.testing.assert_allclose(da @ m.params['W_hh'].T, th.grad.numpy(), atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(problems(max_T=6, cells=(RNN, LSTM, GRU)))
def test_state_grads_are_total_derivatives(p):
    """`state_grads` against autograd for every cell: a zero tensor E_t added to h_t (and to c_t) after step t
    has ∂L/∂E_t = ∂L/∂h_t, the whole derivative through the readout and every later step."""
    m, X, Y, state, mask = p
    P = {k: torch.tensor(v) for k, v in m.params.items()}
    (T, B), n = X.shape[:2], m.n_hidden
    E, EC = (torch.zeros(T, B, n, dtype=torch.float64, requires_grad=True) for _ in range(2))
    Xt = torch.tensor(X)
    XW = (P['W_xh'][Xt] if not Xt.is_floating_point() else Xt @ P['W_xh']) + (P['b_xh'] if 'b_xh' in P else P['b_h'])
    zero = torch.zeros(B, n, dtype=torch.float64)
    if isinstance(m, LSTM): h, c = (zero, zero) if state is None else map(torch.tensor, state)
    else: h = zero if state is None else torch.tensor(state)
    hs = []
    for t in range(T):
        if isinstance(m, LSTM):
            i, f, g, o = (XW[t] + h @ P['W_hh']).chunk(4, -1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g) + EC[t]
            h = torch.sigmoid(o) * torch.tanh(c)
        elif isinstance(m, GRU):
            xr, xz, xn = XW[t].chunk(3, -1)
            hr, hz, hn = (h @ P['W_hh'] + P['b_hh']).chunk(3, -1)
            r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
            h = (1 - z) * torch.tanh(xn + r * hn) + z * h
        else: h = torch.tanh(XW[t] + h @ P['W_hh'])
        h = h + E[t]
        hs.append(h)
    y = torch.tensor(Y)
    if mask is not None: y = y.masked_fill(~torch.tensor(mask), -100)
    logits = torch.stack(hs) @ P['W_hy'] + P['b_y']
    F.cross_entropy(logits.reshape(-1, m.n_out), y.reshape(-1), ignore_index=-100).backward()
    d = state_grads(m, X, Y, state, mask)
    np.testing.assert_allclose(d['h'], E.grad.numpy(), atol=1e-12)
    if isinstance(m, LSTM): np.testing.assert_allclose(d['c'], EC.grad.numpy(), atol=1e-12)
    else: assert set(d) == {'h'}


def test_gru_biases_r_z_only_add_up():
    "In r and z the two GRU biases only enter as a sum (their gradients are equal); in n they differ."
    rng = np.random.default_rng(0)
    m = GRU(3, 4, 2, seed=0, dtype=np.float64)
    for p in m.params.values(): p += 0.3 * rng.standard_normal(p.shape)
    _, g, _ = m.loss_and_grads(rng.standard_normal((6, 2, 3)), rng.integers(0, 2, (6, 2)))
    np.testing.assert_allclose(g['b_xh'][:8], g['b_hh'][:8], atol=1e-15)
    assert np.abs(g['b_xh'][8:] - g['b_hh'][8:]).max() > 1e-6


@pytest.mark.parametrize('cls', [LSTM, GRU])
def test_float32_and_shapes(cls):
    m = cls(5, 7, 3)
    assert m.dtype == np.float32 and all(v.dtype == np.float32 for v in m.params.values())
    k = 4 if cls is LSTM else 3
    assert m.params['W_xh'].shape == (5, k * 7) and m.params['W_hh'].shape == (7, k * 7)
    X = np.random.default_rng(0).integers(0, 5, (6, 2))
    logits, H = m.forward(X)
    assert logits.dtype == H.dtype == np.float32 and logits.shape == (6, 2, 3) and H.shape == (6, 2, 7)
    loss, grads, last = m.loss_and_grads(X, np.zeros((6, 2), int))
    assert all(grads[n].shape == p.shape and grads[n].dtype == np.float32 for n, p in m.params.items())
    assert repr(m) == f"{cls.__name__}(n_in=5, n_hidden=7, n_out=3, dtype=float32)"


def test_lstm_init_forget_bias_one():
    b = LSTM(3, 4, 2).params['b_h']
    np.testing.assert_array_equal(b, np.r_[np.zeros(4), np.ones(4), np.zeros(8)])
    W_hh = LSTM(3, 4, 2, dtype=np.float64).params['W_hh']
    for k in range(4): np.testing.assert_allclose(W_hh[:, 4 * k:4 * k + 4].T @ W_hh[:, 4 * k:4 * k + 4], np.eye(4), atol=1e-12)


@pytest.mark.parametrize('cls', [LSTM, GRU])
def test_errors_match_the_rnn(cls):
    "The same checks and messages as `RNN`, from the same shared helpers."
    m, r = cls(4, 3, 2), RNN(4, 3, 2)
    X, Y = np.zeros((5, 2), int), np.zeros((5, 2), int)
    for bad in (dict(X=np.full((5, 2), 4)), dict(X=np.zeros((5, 2, 3))), dict(targets=np.zeros((5, 3), int)),
                dict(targets=np.full((5, 2), 2)), dict(mask=np.zeros((5, 2), bool)), dict(X=np.zeros((5, 2))),
                dict(mask=np.ones((5, 2)))):
        args = dict(X=X, targets=Y, mask=None) | bad
        with pytest.raises(Exception) as ours: m.loss_and_grads(args['X'], args['targets'], mask=args['mask'])
        with pytest.raises(Exception) as theirs: r.loss_and_grads(args['X'], args['targets'], mask=args['mask'])
        assert type(ours.value) is type(theirs.value) and str(ours.value) == str(theirs.value)
    for args in ((0, 3, 2), (4, True, 2), (4, 3, 2.0)):
        with pytest.raises((TypeError, ValueError)) as ours: cls(*args)
        with pytest.raises((TypeError, ValueError)) as theirs: RNN(*args)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(TypeError, match='dtype'): cls(4, 3, 2, dtype=np.int32)


def test_state_errors_name_the_argument():
    lstm, gru = LSTM(4, 3, 2), GRU(4, 3, 2)
    X, good = np.zeros((5, 2), int), np.zeros((2, 3))
    with pytest.raises(TypeError, match=r"`state`: expected a pair \(h0, c0\).*got ndarray"): lstm.forward(X, good)
    with pytest.raises(TypeError, match=r"got a tuple of length 3"): lstm.forward(X, (good,) * 3)
    with pytest.raises(ValueError, match=r"`c0`: expected shape \(B, n_hidden\) = \(2, 3\); got \(2, 4\)"):
        lstm.forward(X, (good, np.zeros((2, 4))))
    with pytest.raises(ValueError, match=r"`h0`: expected shape"): gru.forward(X, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"`c_prev`: expected finite values"):
        lstm.step(X[0], (good, np.full((2, 3), np.nan)))
    with pytest.raises(ValueError, match=r"`h_prev`"): gru.step(X[0], np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"`x_t`"): gru.step(np.full(2, 9), None)


def test_import_without_torch():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from rnnlit import LSTM, GRU\nimport numpy as np\n"
            "print(LSTM(3, 4, 2).loss(np.zeros((5, 2), int), np.zeros((5, 2), int))[0] > 0)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'True'


def test_bench_gated_runs_short():
    "The benchmark's machinery at a tiny size, one round: agreement checked, chapter 6's timer, every column."
    from rnnlit.gated import bench_gated, bench_gated_table
    res = bench_gated(sizes=[(4, 2, 6, 5, 6, True)], rounds=1, budget=0.01, log=lambda s: None)
    assert [r['cell'] for r in res['rows']] == ['lstm', 'gru']
    for r in res['rows']:
        assert r['agreement'] < 1e-3 and r['ratio'] > 0 and r['torch_no_onednn_ms'] > 0
    assert bench_gated_table(res).count('\n') == 3


@settings(max_examples=30, deadline=None)
@given(problems(max_T=4, max_B=3, max_size=5), st.sampled_from([np.float32, np.float64]))
def test_torch_round_trip_is_lossless(p, dtype):
    "to_torch then from_torch gives back every array bit for bit, for both gated cells and both dtypes."
    m = type(p[0])(p[0].n_in, p[0].n_hidden, p[0].n_out, dtype=dtype)
    for v in m.params.values(): v += np.random.default_rng(0).standard_normal(v.shape).astype(dtype)
    back = from_torch(to_torch(m))
    assert type(back) is type(m) and list(back.params) == list(m.params)
    for k, v in m.params.items():
        np.testing.assert_array_equal(back.params[k], v)
        assert back.params[k].dtype == dtype and back.params[k].flags.c_contiguous


@pytest.mark.parametrize('cls', [LSTM, GRU])
def test_from_torch_reads_pytorch_init(cls):
    "A PyTorch module with its own init (both biases non-zero) maps to a model computing the same."
    from rnnlit.torch_rnn import TorchRNN
    tm = TorchRNN(4, 5, 3, dtype=torch.float64, cell=cls.__name__.lower())
    x = torch.randn(6, 2, 4, dtype=torch.float64)
    m = from_torch(tm)
    assert type(m) is cls
    np.testing.assert_allclose(m.forward(x.numpy())[0], tm(x)[0].detach().numpy(), atol=1e-12)
    with pytest.raises(ValueError, match='projection'):
        from_torch(type('M', (), dict(rnn=torch.nn.LSTM(4, 5, proj_size=2), head=tm.head))())


def test_keep_bias_sets_only_the_keep_gate_and_is_checked():
    "`keep_bias` is the starting bias of f (LSTM) or z (GRU), in the block PyTorch's order puts it; bad values name it."
    for cls, name, block, default in ((LSTM, 'b_h', 1, 1.0), (GRU, 'b_xh', 1, 0.0)):
        for kb, want in ((None, default), (-2, -2.0), (3.5, 3.5)):
            m = cls(3, 4, 2, keep_bias=kb) if kb is not None else cls(3, 4, 2)
            b = m.params[name].reshape(len(m.gates), 4)
            assert (b[block] == want).all() and not np.delete(b, block, 0).any()
        for bad, err in ((True, TypeError), ('3', TypeError), (float('inf'), ValueError)):
            with pytest.raises(err, match='keep_bias'): cls(3, 4, 2, keep_bias=bad)
    with pytest.raises(TypeError): RNN(3, 4, 2, keep_bias=1.0)       # the RNN has no gate to keep anything
