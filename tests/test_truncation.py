"""Chapter 4's claims about vanishing and exploding gradients, the cliff and clipping, over several
seeds; the truncated variants' argument checks."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from rnnlit import RNN, clip_grad_norm
from rnnlit.bptt import torch_forward
from rnnlit.truncation import _cliff_problem, _one_unit, _state_grad_norms, _walk_back
import rnnlit.truncation as truncation

SEEDS = range(5)


def _flat(grads): return np.concatenate([np.ravel(g) for g in grads.values()])


@pytest.mark.parametrize('call, exc, msg', [
    (lambda r, X: r.chunked_loss_and_grads(X, X, 0), ValueError,
     '`k`: expected a positive int; got 0'),
    (lambda r, X: r.chunked_loss_and_grads(X, X, 1.5), TypeError, '`k`: expected a positive int'),
    (lambda r, X: r.chunked_loss_and_grads(X, X, True), TypeError, '`k`: expected a positive int'),
    (lambda r, X: r.bptt_hh_loss_and_grads(X, X, 0, 1), ValueError,
     '`h`: expected a positive int; got 0'),
    (lambda r, X: r.bptt_hh_loss_and_grads(X, X, 2, 0), ValueError,
     '`h_prime`: expected a positive int; got 0'),
    (lambda r, X: r.bptt_hh_loss_and_grads(X, X, 2, 3), ValueError,
     '`h` must be at least `h_prime`'),
])
def test_bad_truncation_arguments(call, exc, msg):
    with pytest.raises(exc) as e: call(RNN(4, 3, 4), np.zeros((3, 2), int))
    assert msg in str(e.value)


def test_one_positive_int_check():
    assert not hasattr(truncation, '_check_positive')


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 3), st.integers(1, 5), st.integers(0, 2**31))
def test_state_grad_norms_match_autograd(T, B, n_h, seed):
    rng = np.random.default_rng(seed)
    rnn = RNN(3, n_h, 2, seed=seed, dtype=np.float64)
    X = rng.standard_normal((T, B, 3))
    h0, e = rng.standard_normal((B, n_h)), rng.standard_normal((B, n_h))
    H, norms = _state_grad_norms(rnn, X, e, h0)
    P = {n: torch.tensor(v) for n, v in rnn.params.items()}
    for t in range(1, T + 1):                                   # h_t is H[t - 1]
        h_t = torch.tensor(H[t - 1], requires_grad=True)
        h_T = torch_forward(P, torch.tensor(X[t:]), h_t)[1][-1] if t < T else h_t
        (h_T * torch.tensor(e)).sum().backward()
        got = np.linalg.norm(h_t.grad.numpy())
        np.testing.assert_allclose(got, norms[t - 1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('sigma', [0.8, 1.0, 1.25, 1.5])
def test_the_bound_holds(sigma, seed):
    _, norms = _walk_back(sigma, seed=seed)
    bound = sigma ** np.arange(len(norms) - 1, -1, -1) * norms[-1]
    assert np.all(norms <= bound * (1 + 1e-12))


@pytest.mark.parametrize('seed', SEEDS)
def test_the_recurrence_alone_offsets_the_gain(seed):
    "sigma_max = 1.25, no input: the state leaves the origin until mean tanh' is about 1/sigma_max."
    def settled(sigma, x_scale):
        H, norms = _walk_back(sigma, x_scale=x_scale, seed=seed)
        d = np.mean(1 - H[20:] ** 2)
        return np.abs(H[0]).mean(), np.abs(H[20:]).mean(), d, (norms[20] / norms[-1]) ** (1 / 19)
    h_1, h, d, factor = settled(1.25, 0.0)
    assert h > 3 * h_1 and abs(1.25 * d - 1) < 0.05 and 0.95 < factor < 1.1
    _, _, d_in, factor_in = settled(1.25, 0.3)
    assert d_in < d and 1 - d > 2 * (d - d_in) and factor_in < 1 < factor
    _, h, _, factor = settled(0.8, 0.0)                        # below 1: to the origin, the bound
    assert h < 1e-3 and abs(factor - 0.8) < 1e-3


@pytest.mark.parametrize('seed', SEEDS)
def test_an_exploding_gradient(seed):
    H, norms = _walk_back(1.5, T=20, x_scale=1e-3, h0_scale=0.0, seed=seed)
    assert (norms[0] / norms[-1]) ** (1 / 19) > 1.2           # grows going back, per step
    assert np.abs(H[:10]).mean() < 0.05                        # while the states stay in the middle
    assert (norms[-6] / norms[-1]) ** (1 / 5) < (norms[0] / norms[9]) ** (1 / 9)
    _, norms = _walk_back(0.8, T=20, seed=seed)
    assert (norms[0] / norms[-1]) ** (1 / 19) < 0.8


@pytest.fixture(scope='module')
def cliff():
    problem = _cliff_problem()
    ws = np.linspace(0.5, 2.5, 801)
    line = [_one_unit(w).loss_and_grads(*problem) for w in ws]
    losses = np.array([loss for loss, _, _ in line])
    gnorms = np.array([clip_grad_norm(g, np.inf) for _, g, _ in line])
    h_T = np.array([h[0, 0] for *_, h in line])
    return problem, ws, line, losses, gnorms, h_T


def test_the_cliff_has_a_wall(cliff):
    _, ws, _, losses, gnorms, h_T = cliff
    i = int(gnorms.argmax())
    assert 1.2 < ws[i] < 1.4
    assert losses[i + 2] - losses[i - 2] > 1
    assert gnorms[i] > 100 * np.median(gnorms)
    assert np.all(h_T[:i - 1] < 0) and np.all(h_T[i + 2:] > 0)


def test_clipping_a_step_at_the_wall(cliff):
    problem, ws, line, losses, gnorms, _ = cliff
    i = int(gnorms.argmax())
    g = line[i][1]
    clipped = {n: v.copy() for n, v in g.items()}
    assert clip_grad_norm(clipped, 1.0) == pytest.approx(gnorms[i], rel=1e-12)
    a, b = _flat(g), _flat(clipped)
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) == pytest.approx(1, abs=1e-12)
    assert np.linalg.norm(b) == pytest.approx(1.0, rel=1e-12)
    after = {}
    for name, grads in (('raw', g), ('clipped', clipped)):
        net = _one_unit(ws[i])
        for n in grads: net.params[n] -= 0.1 * grads[n]
        H = net.forward(problem[0], problem[2])[1]
        after[name] = net.loss(*problem)[0], float((1 - H ** 2).max())
    assert after['raw'][1] < 1e-10                               # the raw step saturates the unit
    assert after['clipped'][0] < losses[i] and after['clipped'][1] > 0.1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4),
       st.floats(1e-3, 1e3), st.integers(0, 2**31))
def test_clipping_keeps_the_direction(shapes, max_norm, seed):
    rng = np.random.default_rng(seed)
    grads = {str(k): rng.standard_normal(s) * 10 ** rng.uniform(-3, 3)
             for k, s in enumerate(shapes)}
    raw = _flat(grads)
    norm = clip_grad_norm(grads, max_norm)
    new = _flat(grads)
    assert norm == pytest.approx(np.linalg.norm(raw), rel=1e-12)
    if norm > max_norm:
        assert np.linalg.norm(new) == pytest.approx(max_norm, rel=1e-12)
        cos = raw @ new / (np.linalg.norm(raw) * np.linalg.norm(new))
        assert cos == pytest.approx(1, abs=1e-12)
    else:
        assert np.array_equal(new, raw)
