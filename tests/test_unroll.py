"""Chapter 2's unrolled RNN, checked over many shapes, dtypes and seeds."""
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from rnnlit import RNN, draw_unrolled


@settings(max_examples=30, deadline=None)
@given(n_in=st.integers(1, 6), n_h=st.integers(1, 8), n_out=st.integers(1, 5), T=st.integers(1, 7),
       B=st.integers(1, 4), seed=st.integers(0, 2**16), ids=st.booleans(), with_h0=st.booleans(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_forward_is_step_T_times(n_in, n_h, n_out, T, B, seed, ids, with_h0, dtype):
    "`H[t-1]` is h_t: `step` applied t times to h_0; `logits[t-1]` is y_t = h_t W_hy + b_y."
    rnn = RNN(n_in, n_h, n_out, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    X = rng.integers(0, n_in, (T, B)) if ids else rng.standard_normal((T, B, n_in)).astype(dtype)
    h0 = rng.standard_normal((B, n_h)).astype(dtype) if with_h0 else None
    logits, H = rnn.forward(X, h0)
    assert H.shape == (T, B, n_h) and logits.shape == (T, B, n_out)
    assert H.dtype == logits.dtype == dtype
    tol = 1e-5 if dtype == np.float32 else 1e-12
    h = h0
    for t in range(1, T + 1):
        h = rnn.step(X[t - 1], h)
        np.testing.assert_allclose(H[t - 1], h, atol=tol, rtol=0)
        np.testing.assert_allclose(logits[t - 1], h @ rnn.params['W_hy'] + rnn.params['b_y'],
                                   atol=tol, rtol=0)


def test_forward_leaves_its_inputs_alone():
    rnn = RNN(3, 4, 2, dtype=np.float64)
    X, h0 = np.ones((5, 2, 3)), np.full((2, 4), 0.5)
    rnn.forward(X, h0)
    assert (X == 1).all() and (h0 == 0.5).all()


@pytest.mark.parametrize('T', [1, 3, np.int64(5)])
def test_draw_unrolled_draws_every_step(T):
    ax = draw_unrolled(T)
    labels = {t.get_text() for t in ax.texts}
    assert {'$h_0$', f'$x_{{{T}}}$', f'$h_{{{T}}}$', f'$y_{{{T}}}$'} <= labels
    assert f'$h_{{{T + 1}}}$' not in labels
    plt.close(ax.figure)


@pytest.mark.parametrize('T, exc, msg', [
    (0, ValueError, '`T`: expected a positive int; got 0'),
    (-2, ValueError, '`T`: expected a positive int; got -2'),
    (2.5, TypeError, '`T`: expected a positive int; got float 2.5'),
    (True, TypeError, '`T`: expected a positive int; got bool True'),
    ('4', TypeError, "`T`: expected a positive int; got str '4'"),
])
def test_draw_unrolled_rejects_a_bad_T(T, exc, msg):
    with pytest.raises(exc) as e: draw_unrolled(T)
    assert msg in str(e.value)


@pytest.mark.parametrize('X, h0, exc, msg', [
    (np.zeros((0, 2), int), None, ValueError,
     '`X`: expected at least one step and one sequence; got shape (0, 2)'),
    (np.zeros((3, 0), int), None, ValueError, 'one sequence; got shape (3, 0)'),
    (np.zeros((3, 2, 4)), None, ValueError, '`X`: expected floats of shape (T, B, n_in)'),
    (np.zeros((3, 2), int), np.zeros((2, 5)), ValueError,
     '`h0`: expected shape (B, n_hidden) = (2, 4); got (2, 5)'),
])
def test_forward_rejects_bad_input(X, h0, exc, msg):
    with pytest.raises(exc) as e: RNN(3, 4, 2).forward(X, h0)
    assert msg in str(e.value)
