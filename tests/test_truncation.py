"""Chapter 4's claims about vanishing and exploding gradients, the cliff and clipping, over several
seeds; the truncated variants' argument checks."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from rnnlit import RNN, clip_grad_norm
from rnnlit.bptt import torch_forward, torch_loss_and_grads
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


@pytest.mark.parametrize('call, exc, msg', [
    (lambda r, X: r.chunked_loss_and_grads(np.int64(1), X, 2), ValueError, '`X`'),
    (lambda r, X: r.randomized_loss_and_grads(np.int64(1), X, 0.5), ValueError, '`X`'),
    (lambda r, X: r.randomized_loss_and_grads(X, X, '0.5'), TypeError,
     "`p`: expected a probability in (0, 1]; got '0.5' of type str"),
    (lambda r, X: r.randomized_loss_and_grads(X, X, True), TypeError, '`p`'),
    (lambda r, X: r.randomized_loss_and_grads(X, X, 0), ValueError,
     '`p`: expected a probability in (0, 1]; got 0'),
    (lambda r, X: r.randomized_loss_and_grads(X, X, 1.5), ValueError, '`p`'),
    (lambda r, X: r.randomized_loss_and_grads(X, X, float('nan')), ValueError, '`p`'),
    (lambda r, X: r.randomized_loss_and_grads(X, X, 0.5, rng='seed'), TypeError,
     "`rng`: expected a np.random.Generator, a seed or None; got 'seed'"),
    (lambda r, X: r.randomized_loss_and_grads(X, X, 0.5, rng=-1), TypeError, '`rng`'),
    (lambda r, X: clip_grad_norm({'w': np.ones(2)}, '1'), TypeError,
     "`max_norm`: expected a positive number; got '1' of type str"),
    (lambda r, X: clip_grad_norm({'w': np.ones(2)}, 0), ValueError, '`max_norm`'),
    (lambda r, X: clip_grad_norm({'w': np.ones(2)}, float('nan')), ValueError, '`max_norm`'),
    (lambda r, X: clip_grad_norm({'w': np.ones(2)}, None), TypeError, '`max_norm`'),
])
def test_bad_arguments_are_named(call, exc, msg):
    with pytest.raises(exc) as e: call(RNN(4, 3, 4), np.zeros((3, 2), int))
    assert msg in str(e.value)


def test_rng_takes_a_seed_or_a_generator():
    rnn, X = RNN(4, 3, 4, seed=0, dtype=np.float64), np.arange(12).reshape(6, 2) % 4
    by_seed = [rnn.randomized_loss_and_grads(X, X, 0.5, 7)[1]['W_hh'] for _ in range(2)]
    by_gen = rnn.randomized_loss_and_grads(X, X, 0.5, np.random.default_rng(7))[1]['W_hh']
    assert np.array_equal(by_seed[0], by_seed[1]) and np.array_equal(by_seed[0], by_gen)
    assert clip_grad_norm({'w': np.ones(4)}, np.int64(1)) == pytest.approx(2.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 8), st.integers(1, 3), st.integers(1, 4), st.integers(0, 2**31))
def test_truncated_methods_take_the_mask(T, B, k, seed):
    "Chunked truncation with a mask is torch's detach loop with that mask; with nothing cut,"
    " BPTT(h; h') and randomized truncation (q = 1) are the full masked gradient."
    rng = np.random.default_rng(seed)
    rnn = RNN(4, 5, 3, seed=seed, dtype=np.float64)
    X, targets = rng.integers(0, 4, (T, B)), rng.integers(0, 3, (T, B))
    h0, mask = rng.standard_normal((B, 5)), rng.random((T, B)) < 0.5
    mask[rng.integers(T), rng.integers(B)] = True
    loss, grads, _ = rnn.chunked_loss_and_grads(X, targets, k, h0=h0, mask=mask)
    t_loss, t_grads, _, _ = torch_loss_and_grads(rnn, X, targets, h0, mask=mask, detach_every=k)
    assert loss == pytest.approx(t_loss, abs=1e-12)
    for n in grads: np.testing.assert_allclose(grads[n], t_grads[n], rtol=1e-10, atol=1e-12)
    full_loss, full, _ = rnn.loss_and_grads(X, targets, h0, mask=mask)
    for l, g, _ in (rnn.bptt_hh_loss_and_grads(X, targets, T, 1, h0=h0, mask=mask),
                    rnn.randomized_loss_and_grads(X, targets, 1.0, seed, h0=h0, mask=mask)):
        assert l == pytest.approx(full_loss, rel=1e-12)
        for n in g: np.testing.assert_allclose(g[n], full[n], rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match='`mask`'):
        rnn.chunked_loss_and_grads(X, targets, k, h0=h0, mask=np.zeros((T, B), bool))


def test_bptt_hh_by_definition_is_private():
    assert not hasattr(truncation, 'bptt_hh_by_definition')
    assert 'bptt_hh_by_definition' not in truncation.__all__
    assert callable(truncation._bptt_hh_by_definition)


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
    H, _ = _walk_back(1.25, x_scale=0.0, seed=seed)
    rms = np.sqrt(np.mean((1 - H[20:] ** 2) ** 2))
    assert h > 3 * h_1 and abs(1.25 * rms - 1) < 0.05 and 0.95 < factor < 1.1
    _, _, d_in, factor_in = settled(1.25, 0.3)
    assert d_in < d and 1 - d > 2 * (d - d_in) and factor_in < 1 < factor
    _, h, _, factor = settled(0.8, 0.0)                        # below 1: to the origin, the bound
    assert h < 1e-3 and abs(factor - 0.8) < 1e-3


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('x_scale', [0.3, 0.0])
def test_the_rms_not_the_mean_sets_the_factor(x_scale, seed):
    "Per step back, the error changes by about sigma * RMS(1 - h^2); at sigma = 2 it still grows."
    for sigma in (0.8, 1.0, 1.25, 1.5, 2.0):
        H, norms = _walk_back(sigma, x_scale=x_scale, seed=seed)
        d = 1 - H[20:] ** 2
        factor = (norms[20] / norms[-1]) ** (1 / 19)
        rms, mean = sigma * np.sqrt(np.mean(d ** 2)), sigma * np.mean(d)
        assert abs(factor - rms) < 0.06 and rms >= mean
        if sigma == 2.0: assert mean < 1 < factor and norms[0] / norms[-1] > 10


@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('sigma', [0.8, 2.0, 3.0])
def test_one_step_back_is_sigma_times_a_weighted_rms(sigma, seed):
    "W_hh = sigma Q, Q orthogonal: |dL_T/dh_{t-1}| = sigma |dL_T/dh_t ⊙ (1 - h_t^2)|, exactly."
    n_h, T = 32, 40
    net = RNN(n_h, n_h, n_h, seed=seed, dtype=np.float64)
    W_hh = net.params['W_hh']; W_hh *= sigma / np.linalg.norm(W_hh, 2)
    rng = np.random.default_rng(seed)
    X, h0 = 0.3 * rng.standard_normal((T, 1, n_h)), 0.1 * rng.standard_normal((1, n_h))
    H = net.forward(X, h0)[1]
    e = rng.standard_normal((1, n_h))                          # dL_T/dh_T
    for t in range(T, 1, -1):                                  # e holds dL_T/dh_t
        e_prev = (e * (1 - H[t - 1] ** 2)) @ W_hh.T            # dL_T/dh_{t-1}
        d = 1 - H[t - 1] ** 2
        weighted_rms = np.sqrt((e ** 2 * d ** 2).sum() / (e ** 2).sum())
        assert np.linalg.norm(e_prev) == pytest.approx(
            sigma * np.linalg.norm(e) * weighted_rms, rel=1e-12)
        e = e_prev


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
