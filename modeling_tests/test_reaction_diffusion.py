"""The dynamics of section 3.3-3.4 against independent float64 references written with explicit loops."""

import itertools

import numpy as np
import pytest
import torch

from transformers_rdmf.reaction_diffusion import (
    diffusion_kernel,
    dispersion_relation,
    gray_scott_fusion,
    homogeneous_steady_states,
    jacobian,
    jacobian_eigenvalues,
    laplacian,
    temporal_diffusion,
    temporal_diffusion_closed_form,
    turing_instability,
)

# ---- references: one video at a time, loops over clips and steps, float64 numpy -----------------


def reference_laplacian(x: np.ndarray) -> np.ndarray:
    """x: (clips, dim), all valid. Zero-flux: a missing neighbour is replaced by the clip itself."""
    n = len(x)
    out = np.zeros_like(x)
    for i in range(n):
        left = x[i - 1] if i > 0 else x[i]
        right = x[i + 1] if i < n - 1 else x[i]
        out[i] = left - 2 * x[i] + right
    return out


def reference_diffusion(x: np.ndarray, coeff: float, dt: float, steps: int) -> np.ndarray:
    for _ in range(steps):
        x = x + dt * coeff * reference_laplacian(x)
    return x


def reference_gray_scott(u, v, d_u, d_v, feed, kill, dt, steps):
    for _ in range(steps):
        lap_u, lap_v = reference_laplacian(u), reference_laplacian(v)
        new_u = np.empty_like(u)
        new_v = np.empty_like(v)
        for i in range(len(u)):
            reaction = u[i] * v[i] * v[i]
            new_u[i] = u[i] + dt * (d_u * lap_u[i] - reaction + feed * (1 - u[i]))
            new_v[i] = v[i] + dt * (d_v * lap_v[i] + reaction - (feed + kill) * v[i])
        u, v = new_u, new_v
    return u, v


LENGTHS = [17, 9, 4, 1]  # one video shorter than K + 1 = 11 and one with a single clip


def padded_batch(lengths, dim=6, seed=0, low=None):
    rng = np.random.default_rng(seed)
    clips = max(lengths)
    videos = [rng.uniform(0, 1, (n, dim)) if low is not None else rng.normal(size=(n, dim)) for n in lengths]
    x = np.zeros((len(lengths), clips, dim))
    mask = np.zeros((len(lengths), clips), dtype=np.int64)
    for b, video in enumerate(videos):
        x[b, : len(video)] = video
        mask[b, : len(video)] = 1
    return videos, torch.from_numpy(x), torch.from_numpy(mask)


def test_laplacian_matches_reference_and_ignores_padding():
    videos, x, mask = padded_batch(LENGTHS)
    x_with_garbage = x + 100 * (1 - mask.unsqueeze(-1).double())  # padded clips must not leak
    out = laplacian(x_with_garbage, mask)
    for b, video in enumerate(videos):
        np.testing.assert_allclose(out[b, : len(video)].numpy(), reference_laplacian(video), atol=1e-12)
        assert torch.all(out[b, len(video) :] == 0)


@pytest.mark.parametrize("steps", [0, 1, 10, 20])
def test_temporal_diffusion_step_by_step_and_closed_form_match_reference(steps):
    videos, x, mask = padded_batch(LENGTHS)
    coeff, dt = 0.2, 1.0
    euler = temporal_diffusion(x, mask, coeff, dt, steps)
    closed = temporal_diffusion_closed_form(x, mask, coeff, dt, steps)
    for b, video in enumerate(videos):
        expected = reference_diffusion(video, coeff, dt, steps)
        np.testing.assert_allclose(euler[b, : len(video)].numpy(), expected, atol=1e-12)
        np.testing.assert_allclose(closed[b, : len(video)].numpy(), expected, atol=1e-12)
        assert torch.all(closed[b, len(video) :] == 0)


def test_closed_form_equals_euler_in_float32_to_1e5():
    _, x, mask = padded_batch([75, 60, 3, 1], dim=256, seed=3)
    x, coeff = x.float(), torch.tensor(0.37)
    euler = temporal_diffusion(x, mask, coeff, 1.3, 10)
    closed = temporal_diffusion_closed_form(x, mask, coeff, 1.3, 10)
    torch.testing.assert_close(closed, euler, atol=1e-5, rtol=0)


def test_padded_batch_gives_each_video_what_it_gives_alone():
    videos, x, mask = padded_batch(LENGTHS, low=0)
    batched_u, batched_v = gray_scott_fusion(x, 0.5 * x, mask, 0.2, 0.1, 0.04, 0.06, 1.0, 5)
    batched_d = temporal_diffusion_closed_form(x, mask, 0.25, 1.0, 10)
    for b, video in enumerate(videos):
        alone = torch.from_numpy(video).unsqueeze(0)
        alone_mask = torch.ones(1, len(video), dtype=torch.long)
        u, v = gray_scott_fusion(alone, 0.5 * alone, alone_mask, 0.2, 0.1, 0.04, 0.06, 1.0, 5)
        d = temporal_diffusion_closed_form(alone, alone_mask, 0.25, 1.0, 10)
        # float64, values in [0, 1]: another batch shape may sum the 21 convolution taps in another order,
        # or vectorise other elements (1 ulp, 1.1e-16, seen; at most about 21 ulp), while padding leaking
        # into a video would move it by more than 1e-3
        torch.testing.assert_close(batched_u[b, : len(video)], u[0], atol=1e-14, rtol=0)
        torch.testing.assert_close(batched_v[b, : len(video)], v[0], atol=1e-14, rtol=0)
        torch.testing.assert_close(batched_d[b, : len(video)], d[0], atol=1e-14, rtol=0)


def test_diffusion_preserves_each_videos_mean_and_smooths():
    videos, x, mask = padded_batch([40, 25])
    out = temporal_diffusion_closed_form(x, mask, 0.5, 1.0, 10)
    for b, video in enumerate(videos):
        smoothed = out[b, : len(video)].numpy()
        np.testing.assert_allclose(smoothed.mean(0), video.mean(0), atol=1e-12)  # zero flux conserves mass
        assert np.abs(np.diff(smoothed, axis=0)).sum() < 0.5 * np.abs(np.diff(video, axis=0)).sum()


def test_diffusion_kernel_is_the_binomial_like_power_of_the_three_tap_stencil():
    kernel = diffusion_kernel(0.25, 1.0, 2, dtype=torch.float64)
    # (0.25, 0.5, 0.25) convolved with itself
    np.testing.assert_allclose(kernel.numpy(), [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16], atol=1e-15)
    assert abs(float(diffusion_kernel(0.3, 1.0, 10, dtype=torch.float64).sum()) - 1) < 1e-12


def test_closed_form_rejects_masks_with_gaps():
    x = torch.zeros(1, 4, 2)
    with pytest.raises(ValueError, match="valid clips must come first"):
        temporal_diffusion_closed_form(x, torch.tensor([[1, 0, 1, 1]]), 0.2, 1.0, 3)


def test_gray_scott_matches_reference_with_simultaneous_updates():
    videos, u, mask = padded_batch(LENGTHS, low=0, seed=1)
    _, v, _ = padded_batch(LENGTHS, low=0, seed=2)
    params = dict(d_u=0.2, d_v=0.1, feed=0.04, kill=0.06, dt=1.0, steps=5)
    out_u, out_v = gray_scott_fusion(u, v, mask, **params)
    for b, video in enumerate(videos):
        n = len(video)
        exp_u, exp_v = reference_gray_scott(u[b, :n].numpy(), v[b, :n].numpy(), **params)
        np.testing.assert_allclose(out_u[b, :n].numpy(), exp_u, atol=1e-12)
        np.testing.assert_allclose(out_v[b, :n].numpy(), exp_v, atol=1e-12)
        assert torch.all(out_u[b, n:] == 0) and torch.all(out_v[b, n:] == 0)


def test_gray_scott_fixed_point_is_kept():
    mask = torch.ones(2, 8, dtype=torch.long)
    u = torch.full((2, 8, 3), 0.5, dtype=torch.float64)
    v = torch.full((2, 8, 3), 0.2, dtype=torch.float64)
    out_u, out_v = gray_scott_fusion(u, v, mask, 0.2, 0.1, 0.04, 0.06, 1.0, 50)
    torch.testing.assert_close(out_u, u, atol=1e-12, rtol=0)
    torch.testing.assert_close(out_v, v, atol=1e-12, rtol=0)


def test_gradcheck_in_float64():
    _, x, mask = padded_batch([6, 4, 2], dim=3)
    coeff = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, c: temporal_diffusion_closed_form(a, mask, c, 1.0, 4), (x, coeff)
    )
    assert torch.autograd.gradcheck(lambda a, c: temporal_diffusion(a, mask, c, 1.0, 4), (x, coeff))
    u = torch.rand(3, 6, 3, dtype=torch.float64, requires_grad=True)
    v = torch.rand(3, 6, 3, dtype=torch.float64, requires_grad=True)
    rates = [torch.tensor(r, dtype=torch.float64, requires_grad=True) for r in (0.2, 0.1, 0.04, 0.06)]
    assert torch.autograd.gradcheck(
        lambda a, b, du, dv, f, k: torch.cat(gray_scott_fusion(a, b, mask, du, dv, f, k, 1.0, 3)),
        (u, v, *rates),
    )


# ---- stability analysis (section 3.4) ---------------------------------------------------------


def test_steady_states_of_the_papers_parameters():
    states = homogeneous_steady_states(0.04, 0.06)
    assert len(states) == 2
    assert states[0] == (1.0, 0.0)
    np.testing.assert_allclose(states[1], (0.5, 0.2), atol=1e-12)


@pytest.mark.parametrize("feed,kill", [(0.04, 0.06), (0.03, 0.055), (0.025, 0.05), (0.09, 0.01)])
def test_steady_states_solve_the_equations(feed, kill):
    states = homogeneous_steady_states(feed, kill)
    expected_count = 3 if feed > 4 * (feed + kill) ** 2 else 1
    if feed == 0.04:
        expected_count = 2
    assert len(states) == expected_count
    for u, v in states:
        assert abs(feed * (1 - u) - u * v * v) < 1e-12
        assert abs(u * v * v - (feed + kill) * v) < 1e-12


def test_jacobian_entries_and_eigenvalues_match_numpy():
    np.testing.assert_allclose(jacobian(1.0, 0.0, 0.04, 0.06).numpy(), [[-0.04, 0.0], [0.0, -0.1]])
    eig = jacobian_eigenvalues(1.0, 0.0, 0.04, 0.06)
    np.testing.assert_allclose(sorted(eig.real.tolist()), [-0.1, -0.04], atol=1e-15)
    rng = np.random.default_rng(0)
    for _ in range(20):
        u, v, feed, kill = rng.uniform(0, 1, 4) * [1, 1, 0.1, 0.1]
        mat = np.array([[-(v**2) - feed, -2 * u * v], [v**2, 2 * u * v - (feed + kill)]])
        ours = np.sort_complex(jacobian_eigenvalues(u, v, feed, kill).numpy())
        np.testing.assert_allclose(ours, np.sort_complex(np.linalg.eigvals(mat)), atol=1e-12)


def test_turing_check_agrees_with_the_dispersion_relation():
    """Both code paths (closed-form conditions, numerical eigenvalues over wavenumbers) agree."""
    q = torch.linspace(0, 20, 20001, dtype=torch.float64)
    seen_turing = False
    for feed, kill, d_u, d_v in itertools.product([0.02, 0.03, 0.04], [0.05, 0.06], [0.2, 1.0], [0.1, 0.02]):
        for u, v in homogeneous_steady_states(feed, kill):
            analysis = turing_instability(u, v, feed, kill, d_u, d_v)
            growth = dispersion_relation(u, v, feed, kill, d_u, d_v, q)
            if analysis.stable_without_diffusion:
                assert float(growth[0]) < 0
                assert analysis.unstable_with_diffusion == bool((growth > 1e-12).any())
                if analysis.turing_unstable:
                    seen_turing = True
                    q_c = torch.tensor([analysis.critical_wavenumber], dtype=torch.float64)
                    assert float(dispersion_relation(u, v, feed, kill, d_u, d_v, q_c)) > 0
    assert seen_turing


def test_equal_diffusion_never_gives_turing_instability():
    for feed, kill in [(0.02, 0.05), (0.03, 0.06), (0.025, 0.055)]:
        for u, v in homogeneous_steady_states(feed, kill):
            analysis = turing_instability(u, v, feed, kill, 0.1, 0.1)
            assert not analysis.turing_unstable


def test_trivial_state_is_stable_and_not_turing_unstable():
    analysis = turing_instability(1.0, 0.0, 0.04, 0.06, 0.2, 0.1)
    assert analysis.stable_without_diffusion
    assert not analysis.unstable_with_diffusion
    assert analysis.trace == pytest.approx(-0.14) and analysis.determinant == pytest.approx(0.004)
