"""Chapters 2, 3 and 4 over random shapes: forward is step T times; BPTT, with and without a mask,
agrees with finite differences and torch.autograd in float64; the loss is finite for extreme float32
scores; the truncation schemes match their definitions and PyTorch."""
import itertools
from functools import partial
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from rnnlit import RNN, clip_grad_norm, numerical_grads, rel_error, torch_loss_and_grads
from rnnlit.bptt import _backward, _softmax_xent, torch_forward
from rnnlit.truncation import _bptt_hh_by_definition as bptt_hh_by_definition


@st.composite
def problems(draw, max_T=7, max_B=4, max_size=6):
    "A float64 RNN, inputs (floats or token ids), targets and maybe an initial state."
    T, B = draw(st.integers(1, max_T)), draw(st.integers(1, max_B))
    n_in, H, n_out = (draw(st.integers(1, max_size)) for _ in range(3))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    rnn = RNN(n_in, H, n_out, seed=seed, dtype=np.float64)
    X = rng.integers(0, n_in, (T, B)) if draw(st.booleans()) else rng.standard_normal((T, B, n_in))
    h0 = rng.standard_normal((B, H)) * 0.5 if draw(st.booleans()) else None
    return rnn, X, rng.integers(0, n_out, (T, B)), h0


@st.composite
def masked_problems(draw, **kw):
    "`problems` plus a boolean (T, B) mask with at least one True entry."
    rnn, X, Y, h0 = draw(problems(**kw))
    T, B = Y.shape
    flat = draw(st.lists(st.booleans(), min_size=T * B, max_size=T * B))
    mask = np.array(flat).reshape(T, B)
    mask[draw(st.integers(0, T - 1)), draw(st.integers(0, B - 1))] = True
    return rnn, X, Y, h0, mask


@settings(max_examples=60, deadline=None)
@given(problems())
def test_forward_is_step_T_times(p):
    rnn, X, _, h0 = p
    logits, H = rnn.forward(X, h0)
    h = h0
    for t in range(len(X)):
        h = rnn.step(X[t], h)
        np.testing.assert_allclose(H[t], h, atol=1e-13, rtol=0)
    np.testing.assert_allclose(logits, H @ rnn.params['W_hy'] + rnn.params['b_y'],
                               atol=1e-13, rtol=0)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_bptt_matches_finite_differences(p):
    rnn, X, Y, h0 = p
    _, grads, _ = rnn.loss_and_grads(X, Y, h0)
    fd = numerical_grads(rnn, X, Y, h0)
    for k in grads:
        # A gradient that is exactly zero by structure (W_hh when T = 1 and h_0 = 0) has no relative
        # error to speak of: there the estimate must be zero up to rounding instead.
        ok = (rel_error(fd[k], grads[k]) < 1e-6
              or (not grads[k].any() and np.abs(fd[k]).max() < 1e-10))
        assert ok, (k, rel_error(fd[k], grads[k]))


@settings(max_examples=80, deadline=None)
@given(problems(max_T=12, max_B=5, max_size=9))
def test_bptt_matches_torch_autograd(p):
    rnn, X, Y, h0 = p
    loss, grads, h_last = rnn.loss_and_grads(X, Y, h0)
    t_loss, t_grads, t_h_last, t_logits = torch_loss_and_grads(rnn, X, Y, h0)
    assert abs(loss - t_loss) < 1e-10
    assert np.abs(rnn.forward(X, h0)[0] - t_logits).max() < 1e-10
    assert np.abs(h_last - t_h_last).max() < 1e-10
    for k in grads:
        assert grads[k].shape == rnn.params[k].shape and grads[k].dtype == np.float64
        assert np.abs(grads[k] - t_grads[k]).max() < 1e-10, k


def test_float32_gradients_are_float32_and_close_to_float64():
    r64 = RNN(7, 11, 5, seed=3, dtype=np.float64)
    r32 = RNN(7, 11, 5, seed=3, dtype=np.float32)
    rng = np.random.default_rng(0)
    X, Y = rng.integers(0, 7, (9, 4)), rng.integers(0, 5, (9, 4))
    l64, g64, _ = r64.loss_and_grads(X, Y)
    l32, g32, h32 = r32.loss_and_grads(X, Y)
    assert h32.dtype == np.float32 and all(g.dtype == np.float32 for g in g32.values())
    assert abs(l32 - l64) < 1e-5
    for k in g64: assert rel_error(g32[k], g64[k]) < 1e-4, k


@settings(max_examples=40, deadline=None)
@given(problems(max_T=12), st.integers(1, 13))
def test_chunked_truncation_is_torch_detach(p, k):
    rnn, X, Y, h0 = p
    loss, grads, _ = rnn.chunked_loss_and_grads(X, Y, k, h0)
    t_loss, t_grads, _, _ = torch_loss_and_grads(rnn, X, Y, h0, detach_every=k)
    assert abs(loss - t_loss) < 1e-10
    for n in grads: assert np.abs(grads[n] - t_grads[n]).max() < 1e-10, n


@settings(max_examples=40, deadline=None)
@given(problems(max_T=12), st.integers(1, 6), st.integers(0, 8))
def test_bptt_hh_matches_its_definition(p, h_prime, extra):
    rnn, X, Y, h0 = p
    h = h_prime + extra
    _, grads, _ = rnn.bptt_hh_loss_and_grads(X, Y, h, h_prime, h0)
    ref = bptt_hh_by_definition(rnn, X, Y, h, h_prime, h0)
    for n in grads: assert rel_error(grads[n], ref[n]) < 1e-12, n
    if h >= len(X):
        full = rnn.loss_and_grads(X, Y, h0)[1]
        for n in grads: assert rel_error(grads[n], full[n]) < 1e-12, n


@settings(max_examples=15, deadline=None)
@given(problems(max_T=6), st.floats(0.1, 1.0))
def test_randomized_truncation_is_unbiased(p, prob):
    rnn, X, Y, h0 = p
    T = len(X)
    full = rnn.loss_and_grads(X, Y, h0)[1]
    expected = {n: np.zeros_like(g) for n, g in full.items()}
    for pattern in itertools.product([0, 1], repeat=T - 1):
        kept = np.array((0,) + pattern)
        w = prob ** kept[1:].sum() * (1 - prob) ** (T - 1 - kept[1:].sum())
        g = rnn._grads_with(X, Y, h0, partial(_backward, keep=kept / prob))[1]
        for n in g: expected[n] += w * g[n]
    for n in full: assert rel_error(expected[n], full[n]) < 1e-10, n


def test_randomized_with_p_one_is_full_bptt():
    rnn = RNN(4, 5, 4, seed=0, dtype=np.float64)
    X, Y = np.array([[0, 1], [2, 3], [1, 1]]), np.array([[1, 2], [3, 0], [0, 0]])
    full = rnn.loss_and_grads(X, Y)[1]
    rand = rnn.randomized_loss_and_grads(X, Y, 1.0, np.random.default_rng(0))[1]
    for n in full: np.testing.assert_array_equal(full[n], rand[n])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=4),
       st.floats(1e-3, 10), st.integers(0, 1000))
def test_clip_grad_norm_matches_torch(shapes, max_norm, seed):
    rng = np.random.default_rng(seed)
    grads = {f'g{i}': rng.standard_normal(s) for i, s in enumerate(shapes)}
    params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads.values()]
    for p, g in zip(params, grads.values()): p.grad = torch.tensor(g.copy())
    norm = clip_grad_norm(grads, max_norm)
    t_norm = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
    assert abs(norm - t_norm) < 1e-12 * max(1, t_norm)
    after = np.sqrt(sum((g ** 2).sum() for g in grads.values()))
    assert after <= max_norm * (1 + 1e-12) and (norm <= max_norm or abs(after - max_norm) < 1e-9)
    for g, p in zip(grads.values(), params):
        assert rel_error(g, p.grad.numpy()) < 1e-6 / max_norm + 1e-12


def test_clip_grad_norm_leaves_non_finite_gradients_alone():
    grads = {'a': np.array([1.0, np.inf])}
    assert clip_grad_norm(grads, 1.0) == np.inf and grads['a'][0] == 1.0


@settings(max_examples=80, deadline=None)
@given(masked_problems(max_T=12, max_B=5, max_size=9))
def test_masked_bptt_matches_torch_autograd(p):
    rnn, X, Y, h0, mask = p
    loss, grads, h_last = rnn.loss_and_grads(X, Y, h0, mask)
    t_loss, t_grads, t_h_last, _ = torch_loss_and_grads(rnn, X, Y, h0, mask)
    assert abs(loss - t_loss) < 1e-10
    assert abs(rnn.loss(X, Y, h0, mask)[0] - loss) < 1e-12
    assert np.abs(h_last - t_h_last).max() < 1e-10
    for k in grads: assert np.abs(grads[k] - t_grads[k]).max() < 1e-10, k


@settings(max_examples=25, deadline=None)
@given(masked_problems())
def test_masked_bptt_matches_finite_differences(p):
    rnn, X, Y, h0, mask = p
    _, grads, _ = rnn.loss_and_grads(X, Y, h0, mask)
    fd = numerical_grads(rnn, X, Y, h0, mask)
    for k in grads:
        ok = (rel_error(fd[k], grads[k]) < 1e-6
              or (not grads[k].any() and np.abs(fd[k]).max() < 1e-10))
        assert ok, (k, rel_error(fd[k], grads[k]))


@settings(max_examples=60, deadline=None)
@given(masked_problems(max_T=10, max_B=5, max_size=8))
def test_masked_loss_is_the_mean_over_kept_positions(p):
    rnn, X, Y, h0, mask = p
    logits = rnn.forward(X, h0)[0]                                       # (T, B, n_out)
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ell = -np.take_along_axis(log_p, Y[..., None], -1)[..., 0]           # (T, B)
    assert abs(rnn.loss(X, Y, h0, mask)[0] - ell[mask].mean()) < 1e-12
    assert abs(rnn.loss(X, Y, h0)[0] - ell.mean()) < 1e-12
    assert abs(rnn.loss(X, Y, h0, np.ones_like(mask))[0] - ell.mean()) < 1e-12


def test_mask_of_all_true_is_no_mask():
    rnn = RNN(4, 5, 4, seed=1, dtype=np.float64)
    X, Y = np.array([[0, 1], [2, 3], [1, 1]]), np.array([[1, 2], [3, 0], [0, 0]])
    l0, g0, _ = rnn.loss_and_grads(X, Y)
    l1, g1, _ = rnn.loss_and_grads(X, Y, mask=np.ones((3, 2), bool))
    assert abs(l0 - l1) < 1e-15
    for k in g0: np.testing.assert_allclose(g0[k], g1[k], rtol=0, atol=1e-16)


@pytest.mark.parametrize('big', [1e4, 1e3, 200.0, 1e30])
def test_extreme_float32_scores_give_float64_loss(big):
    Z = np.array([[big, -big, 0], [-big, 0, big], [0, big, -big]], np.float32)
    y = np.array([1, 0, 2])                                              # each target scores -big
    for mask in (None, np.array([True, False, True])):
        l32, d32 = _softmax_xent(Z.copy(), y, mask)
        l64, d64 = _softmax_xent(Z.astype(np.float64), y, mask)
        assert np.isfinite(l32) and abs(l32 - l64) <= 1e-6 * l64
        assert d32.dtype == np.float32 and np.isfinite(d32).all()
        np.testing.assert_allclose(d32, d64, rtol=0, atol=1e-7)


def test_extreme_scores_through_the_model_stay_finite():
    rnn = RNN(3, 4, 3, seed=0)                                           # float32
    rnn.params['W_hy'][:] = np.float32(1e4) * np.array([[1, -1, 0]] * 4, np.float32)
    X, Y = np.array([[0], [1], [2]]), np.array([[1], [1], [1]])          # scores of size ~1e4
    loss, grads, _ = rnn.loss_and_grads(X, Y)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize('mask, exc, msg', [
    (np.zeros((3, 2), bool), ValueError, '`mask`: expected at least one True entry'),
    (np.ones((3, 1), bool), ValueError, '`mask`: expected shape (T, B) = (3, 2); got (3, 1)'),
    (np.ones((2, 3), bool), ValueError, '`mask`: expected shape (T, B) = (3, 2); got (2, 3)'),
    (np.ones(6, bool), ValueError, '`mask`: expected shape (T, B) = (3, 2); got (6,)'),
    (np.ones((3, 2)), TypeError, '`mask`: expected a boolean array'),
    (np.ones((3, 2), int), TypeError, '`mask`: expected a boolean array'),
])
def test_bad_mask(mask, exc, msg):
    rnn = RNN(4, 3, 5)
    X, Y = np.zeros((3, 2), int), np.zeros((3, 2), int)
    for call in (rnn.loss_and_grads, rnn.loss):
        with pytest.raises(exc) as e: call(X, Y, mask=mask)
        assert msg in str(e.value)


_ids = lambda: (np.zeros((3, 2), int), np.zeros((3, 2), int))          # X, targets: T = 3, B = 2


@pytest.mark.parametrize('call, exc, msg', [
    (lambda r: r.forward(np.zeros((3, 2), np.float32)), TypeError,
     'token ids must have an integer dtype'),
    (lambda r: r.loss_and_grads(np.zeros((3, 2), int), np.zeros((3, 1), int)), ValueError,
     '`targets`: expected shape (T, B) = (3, 2); got (3, 1)'),
    (lambda r: r.loss_and_grads(np.zeros((3, 2), int), np.full((3, 2), 7)), ValueError,
     'class ids must lie in [0, 5); got ids from 7 to 7'),
    (lambda r: r.chunked_loss_and_grads(*_ids(), 0), ValueError,
     '`k`: expected a positive int; got 0'),
    (lambda r: r.bptt_hh_loss_and_grads(*_ids(), 2, 3), ValueError,
     '`h` must be at least `h_prime`'),
    (lambda r: r.randomized_loss_and_grads(*_ids(), 0.0), ValueError,
     '`p`: expected a probability in (0, 1]'),
    (lambda r: clip_grad_norm({}, -1), ValueError, '`max_norm`'),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc) as e: call(RNN(4, 3, 5))
    assert msg in str(e.value)


@pytest.mark.parametrize('k, exc', [(0, ValueError), (-1, ValueError), (True, TypeError),
                                    (2.5, TypeError), ('2', TypeError)])
def test_bad_detach_every(k, exc):
    rnn = RNN(4, 3, 5, dtype=np.float64)
    X, Y = np.zeros((3, 2), int), np.zeros((3, 2), int)
    P = {n: torch.tensor(v) for n, v in rnn.params.items()}
    with pytest.raises(exc) as e: torch_forward(P, torch.tensor(X), detach_every=k)
    assert '`detach_every`: expected a positive int' in str(e.value)
    with pytest.raises(exc): torch_loss_and_grads(rnn, X, Y, detach_every=k)


def test_detach_every_none_and_past_T_are_full_bptt():
    rnn = RNN(4, 3, 5, seed=1, dtype=np.float64)
    X, Y = np.array([[0, 1], [2, 3], [1, 1]]), np.array([[1, 2], [3, 0], [0, 0]])
    full = torch_loss_and_grads(rnn, X, Y)[1]
    for k in (3, np.int64(7)):
        g = torch_loss_and_grads(rnn, X, Y, detach_every=k)[1]
        for n in full: np.testing.assert_array_equal(g[n], full[n])
