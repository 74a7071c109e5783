"""Reaction-diffusion dynamics of RDMF, as pure tensor functions.

Paper: "Turing Patterns for Multimedia: Reaction-Diffusion Multi-Modal Fusion for Language-Guided
Video Moment Retrieval" (RDMF), sections 3.3-3.4. Equation numbers follow the project's reading of
the paper in ``rdmf-spec.md``.

Shapes: ``x``, ``u``, ``v`` are ``(batch, clips, dim)``; ``mask`` is ``(batch, clips)`` with 1 for the
valid clips of each video. Boundaries are zero-flux (Neumann) at both ends of each video's valid
clips, so padded clips never leak into valid ones and a padded batch gives each video what it gives
alone. Padded positions of every output are zero.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# A discriminant this close to zero (relative to feed^2) is a double root: F=0.04, k=0.06 lands
# exactly on it in exact arithmetic but a hair either side in floating point.
_DISCRIMINANT_RTOL = 1e-9


def _as_valid(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(batch, clips) mask -> (batch, clips, 1) in ``like``'s dtype."""
    return mask.to(dtype=like.dtype).unsqueeze(-1)


def laplacian(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Discrete Laplacian along time with zero-flux boundaries (eq. 2).

    ``Lap(x)_i = x_{i+1} - 2 x_i + x_{i-1}``, where a missing or padded neighbour contributes
    nothing (its flux is zero): at a video's first valid clip ``Lap(x)_0 = x_1 - x_0``.

    Args:
        x: ``(batch, clips, dim)``.
        mask: ``(batch, clips)``, 1 for valid clips.

    Returns:
        ``(batch, clips, dim)``, zero at padded clips.
    """
    valid = _as_valid(mask, x)
    x = x * valid
    next_valid = F.pad(valid[:, 1:], (0, 0, 0, 1))
    prev_valid = F.pad(valid[:, :-1], (0, 0, 1, 0))
    next_x = F.pad(x[:, 1:], (0, 0, 0, 1))
    prev_x = F.pad(x[:, :-1], (0, 0, 1, 0))
    flux = next_valid * (next_x - x) + prev_valid * (prev_x - x)
    return flux * valid


def temporal_diffusion(
    x: torch.Tensor, mask: torch.Tensor, coeff: float | torch.Tensor, dt: float, steps: int
) -> torch.Tensor:
    """Heat equation along time by forward Euler, step by step (eqs. 1-3).

    ``X^(k+1) = X^(k) + dt * D * Lap(X^(k))``, ``X^(0) = x``; returns ``X^(steps)``.
    This is the reference path; :func:`temporal_diffusion_closed_form` gives the same result in one
    banded convolution.

    Args:
        x: ``(batch, clips, dim)``.
        mask: ``(batch, clips)``, 1 for valid clips.
        coeff: diffusion coefficient ``D`` (float or 0-d tensor, may require grad).
        dt: Euler step; stable while ``dt * D <= 1/2``.
        steps: number of steps ``K``.

    Returns:
        ``(batch, clips, dim)``, zero at padded clips.
    """
    x = x * _as_valid(mask, x)
    for _ in range(steps):
        x = x + dt * coeff * laplacian(x, mask)  # eq. 3
    return x


def diffusion_kernel(
    coeff: float | torch.Tensor, dt: float, steps: int, dtype=None, device=None
) -> torch.Tensor:
    """Taps of ``(I + dt D Lap)^K`` in the interior: the 3-tap kernel ``(a, 1-2a, a)`` convolved K times.

    Returns:
        ``(2 * steps + 1,)``, symmetric, summing to 1; differentiable in ``coeff``.
    """
    a = torch.as_tensor(coeff, dtype=dtype, device=device) * dt
    if dtype is not None:
        a = a.to(dtype)
    one = torch.ones((), dtype=a.dtype, device=a.device)
    step = torch.stack([a, one - 2 * a, a]).view(1, 1, 3)
    kernel = one.view(1, 1, 1)
    for _ in range(steps):
        kernel = F.conv1d(F.pad(kernel, (2, 2)), step)
    return kernel.view(-1)


def _reflected_index(lengths: torch.Tensor, total: int, halo: int) -> torch.Tensor:
    """For each video, the source clip of every position in ``[-halo, total + halo)``.

    Half-sample symmetric reflection (``x_{-1} = x_0, x_{-2} = x_1``), periodic with period
    ``2 n`` so that videos shorter than the halo reflect again. Positions past a video's end map
    into its valid clips too; the caller masks those outputs.

    Returns:
        ``(batch, total + 2 * halo)`` long.
    """
    positions = torch.arange(-halo, total + halo, device=lengths.device)
    period = 2 * lengths.clamp(min=1).unsqueeze(1)
    folded = torch.remainder(positions.unsqueeze(0), period)
    return torch.where(folded >= period // 2, period - 1 - folded, folded)


def tracing() -> bool:
    """Whether ``torch.compile`` or ``torch.export`` is tracing: value checks (finite inputs, mask layouts)
    depend on data, which a traced program cannot branch on, so they run in eager mode only."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _prefix_lengths(mask: torch.Tensor) -> torch.Tensor:
    """Valid-clip counts, checking that valid clips form a prefix (padding only at the end)."""
    mask = mask.bool()
    lengths = mask.sum(dim=1)
    prefix = torch.arange(mask.shape[1], device=mask.device).unsqueeze(0) < lengths.unsqueeze(1)
    if not tracing() and not torch.equal(prefix, mask):
        raise ValueError("mask: valid clips must come first in each row (padding only at the end).")
    return lengths


def temporal_diffusion_closed_form(
    x: torch.Tensor, mask: torch.Tensor, coeff: float | torch.Tensor, dt: float, steps: int
) -> torch.Tensor:
    """``K`` Euler steps of eqs. 1-3 applied as one banded operator ``(I + dt D Lap)^K``.

    Each video's valid clips are extended by symmetric reflection (the zero-flux boundary) and the
    ``(2K+1)``-tap kernel of :func:`diffusion_kernel` runs once as a depthwise convolution. Memory is
    ``O(batch * (clips + 2K) * dim)``: the ``clips x clips`` operator is never formed.

    Args:
        x: ``(batch, clips, dim)``.
        mask: ``(batch, clips)``, 1 for valid clips, which must come first in each row.
        coeff, dt, steps: as in :func:`temporal_diffusion`.

    Returns:
        ``(batch, clips, dim)``, zero at padded clips; equal to :func:`temporal_diffusion`.
    """
    if steps == 0:
        return x * _as_valid(mask, x)
    clips, dim = x.shape[1:]
    lengths = _prefix_lengths(mask)
    index = _reflected_index(lengths, clips, steps)  # (batch, clips + 2K)
    extended = torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, dim))
    kernel = diffusion_kernel(coeff, dt, steps, dtype=x.dtype, device=x.device)
    depthwise = kernel.view(1, 1, -1).expand(dim, 1, -1)
    smoothed = F.conv1d(extended.transpose(1, 2), depthwise, groups=dim)  # (batch, dim, clips)
    return smoothed.transpose(1, 2) * _as_valid(mask, x)


def gray_scott_step(
    u: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    d_u: float | torch.Tensor,
    d_v: float | torch.Tensor,
    feed: float | torch.Tensor,
    kill: float | torch.Tensor,
    dt: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward-Euler step of the Gray-Scott system; both updates use the same ``(u, v)`` (eqs. 7-8)."""
    uvv = u * v * v
    reaction_u = -uvv + feed * (1 - u)  # eq. 5, f(U, V)
    reaction_v = uvv - (feed + kill) * v  # eq. 6, g(U, V)
    valid = _as_valid(mask, u)
    u_next = u + dt * (d_u * laplacian(u, mask) + reaction_u)  # eq. 7
    v_next = v + dt * (d_v * laplacian(v, mask) + reaction_v)  # eq. 8
    return u_next * valid, v_next * valid


def gray_scott_fusion(
    u: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    d_u: float | torch.Tensor,
    d_v: float | torch.Tensor,
    feed: float | torch.Tensor,
    kill: float | torch.Tensor,
    dt: float,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gray-Scott reaction-diffusion of activator ``u`` (video) and inhibitor ``v`` (text), eqs. 5-8.

    ``dU/dt = D_u Lap(U) - U V^2 + F (1 - U)``, ``dV/dt = D_v Lap(V) + U V^2 - (F + k) V``, forward
    Euler for ``steps`` steps.

    Args:
        u: ``(batch, clips, dim)`` activator concentrations.
        v: ``(batch, clips, dim)`` inhibitor concentrations.
        mask: ``(batch, clips)``, 1 for valid clips.
        d_u, d_v: diffusion coefficients; feed, kill: ``F`` and ``k``. Floats or 0-d tensors.
        dt: Euler step; steps: ``T_r``.

    Returns:
        ``(u, v)`` after ``steps`` steps, each ``(batch, clips, dim)``, zero at padded clips.
    """
    valid = _as_valid(mask, u)
    u, v = u * valid, v * valid
    for _ in range(steps):
        u, v = gray_scott_step(u, v, mask, d_u, d_v, feed, kill, dt)
    return u, v


def _edge_weights(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """1 on each edge ``(i, i+1)`` whose two clips are valid: ``(batch, clips - 1, 1, 1)``; None if no padding."""
    if not tracing() and bool(mask.all()):  # a shortcut on data; a traced program always weighs the edges
        return None
    valid = mask.to(dtype)
    return (valid[:, 1:] * valid[:, :-1]).view(mask.shape[0], -1, 1, 1)


def _edge_laplacian(w: torch.Tensor, edges: torch.Tensor | None) -> torch.Tensor:
    """Eq. 2 as the difference of the fluxes through each clip's two edges; a padded edge carries none.

    ``Lap(w)_i = e_i (w_{i+1} - w_i) - e_{i-1} (w_i - w_{i-1})`` with ``e`` from :func:`_edge_weights`:
    equal to :func:`laplacian` at valid clips and zero at padded ones, in four passes over ``w``.
    """
    flux = w[:, 1:] - w[:, :-1]  # (batch, clips - 1, ...)
    if edges is not None:
        flux = flux * edges
    lap = F.pad(flux, (0,) * (2 * (w.dim() - 2)) + (0, 1))
    lap[:, 1:] -= flux
    return lap


def _species_coefficients(d_u, d_v, feed, kill, dt: float, like: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-species ``(2, 1)`` factors of the fused update (row 0: ``U``, row 1: ``V``)."""
    d_u, d_v, feed, kill = (
        torch.as_tensor(t, dtype=like.dtype, device=like.device) for t in (d_u, d_v, feed, kill)
    )
    zero = torch.zeros_like(feed)
    return {
        "keep": (1 - dt * torch.stack([feed, feed + kill])).view(2, 1),
        "source": (dt * torch.stack([feed, zero])).view(2, 1),
        "diffusion": (dt * torch.stack([d_u, d_v])).view(2, 1),
        "reaction_sign": torch.tensor([-dt, dt], dtype=like.dtype, device=like.device).view(2, 1),
    }


def _fused_steps(w, edges, keep, source, diffusion, reaction_sign, steps: int):
    """``steps`` Euler steps of eqs. 7-8 on the stacked species ``w = (U, V)``, ``(batch, clips, 2, dim)``.

    Rearranged per species: ``W' = W (1 - dt rate) + dt source + dt D Lap(W) -+ dt U V^2``, with rate
    ``(F, F + k)``, source ``(F, 0)`` and one Laplacian for both species. Padded clips are not masked
    between steps: no edge reaches them, so they cannot leak into valid clips. Out of place (autograd).
    """
    for _ in range(steps):
        lap = _edge_laplacian(w, edges)
        u, v = w[:, :, 0], w[:, :, 1]
        uvv = (u * v * v).unsqueeze(2)  # (batch, clips, 1, dim), eqs. 5-6
        w = torch.addcmul(source, w, keep).addcmul_(lap, diffusion).addcmul_(uvv, reaction_sign)
    return w


def _fused_steps_in_place(w, edges, keep, source, diffusion, reaction_sign, steps: int) -> None:
    """:func:`_fused_steps` updating ``w`` in place, with two work buffers allocated once.

    ``Lap`` is never stored: the fluxes are added to the clip on their left and taken from the one on
    their right after the reaction terms are read from the old ``w``.
    """
    batch, clips, _, dim = w.shape
    flux = w.new_empty(batch, clips - 1, 2, dim)
    uvv = w.new_empty(batch, clips, 1, dim)
    for _ in range(steps):
        torch.sub(w[:, 1:], w[:, :-1], out=flux)  # eq. 2 as fluxes, see _edge_laplacian
        if edges is not None:
            flux.mul_(edges)
        torch.mul(w[:, :, :1], w[:, :, 1:], out=uvv)
        uvv.mul_(w[:, :, 1:])  # eqs. 5-6
        w.mul_(keep).add_(source).addcmul_(uvv, reaction_sign)
        w[:, :-1].addcmul_(flux, diffusion)
        w[:, 1:].addcmul_(flux, diffusion, value=-1)


def gray_scott_fusion_fused(
    u: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor,
    d_u: float | torch.Tensor,
    d_v: float | torch.Tensor,
    feed: float | torch.Tensor,
    kill: float | torch.Tensor,
    dt: float,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`gray_scott_fusion` with fewer passes over memory; equal to it up to float rounding.

    Both species are stacked so one Laplacian serves them, each step is three fused multiply-adds,
    and without autograd the steps update one buffer in place. Memory stays ``O(batch * clips * dim)``.

    Args and returns: as :func:`gray_scott_fusion` (without autograd, views of one buffer).
    """
    edges = _edge_weights(mask, u.dtype)
    valid = None if edges is None else _as_valid(mask, u)
    coefficients = _species_coefficients(d_u, d_v, feed, kill, dt, u)
    needs_grad = torch.is_grad_enabled() and any(
        isinstance(t, torch.Tensor) and t.requires_grad for t in (u, v, d_u, d_v, feed, kill)
    )
    if needs_grad:
        w = torch.stack([u, v.expand_as(u)], dim=2)  # (batch, clips, 2, dim)
        w = w if valid is None else w * valid.unsqueeze(2)
        w = _fused_steps(w, edges, **coefficients, steps=steps)
    else:
        return _fused_no_grad(u, v, valid, edges, coefficients, steps)
    if valid is None:
        return w[:, :, 0], w[:, :, 1]
    return w[:, :, 0] * valid, w[:, :, 1] * valid


def _fused_no_grad(u, v, valid, edges, coefficients, steps: int):
    """The no-autograd branch of :func:`gray_scott_fusion_fused`: one stacked buffer updated in place."""
    w = torch.stack([u, v.expand_as(u)], dim=2)  # (batch, clips, 2, dim)
    if valid is not None:
        w.mul_(valid.unsqueeze(2))
    _fused_steps_in_place(w, edges, **coefficients, steps=steps)
    if valid is not None:
        w.mul_(valid.unsqueeze(2))
    return w[:, :, 0], w[:, :, 1]


_COMPILED = {}


def gray_scott_fusion_compiled(u, v, mask, d_u, d_v, feed, kill, dt: float, steps: int):
    """:func:`gray_scott_fusion_fused` through ``torch.compile`` (one generated loop per step).

    Compiled on first use (tens of seconds on CPU; needs a C++ compiler) with dynamic shapes, so new
    clip counts do not recompile. Args and returns: as :func:`gray_scott_fusion`.
    """
    if "fusion" not in _COMPILED:
        _COMPILED["fusion"] = torch.compile(_fused_trace, dynamic=True)
    edges = _edge_weights(mask, u.dtype)
    if edges is None:
        edges = u.new_ones(u.shape[0], u.shape[1] - 1, 1, 1)
    coefficients = _species_coefficients(d_u, d_v, feed, kill, dt, u)
    return _COMPILED["fusion"](u, v, _as_valid(mask, u), edges, **coefficients, steps=steps)


def _fused_trace(u, v, valid, edges, keep, source, diffusion, reaction_sign, steps: int):
    """The traced body of :func:`gray_scott_fusion_compiled`: out of place, one graph for any mask."""
    w = torch.stack([u * valid, v * valid], dim=2)
    w = _fused_steps(w, edges, keep, source, diffusion, reaction_sign, steps)
    return w[:, :, 0] * valid, w[:, :, 1] * valid


GRAY_SCOTT_IMPLEMENTATIONS = {
    "euler": gray_scott_fusion,
    "fused": gray_scott_fusion_fused,
    "compiled": gray_scott_fusion_compiled,
}


# ---------------------------------------------------------------------------------------------
# Stability analysis (section 3.4)
# ---------------------------------------------------------------------------------------------


def homogeneous_steady_states(feed: float, kill: float) -> list[tuple[float, float]]:
    """Spatially uniform equilibria ``(U, V)`` of Gray-Scott: ``F(1-U) = U V^2`` and ``U V^2 = (F+k) V``.

    The trivial state ``(1, 0)`` always; when ``F >= 4 (F+k)^2``,
    ``V = [F +- sqrt(F^2 - 4 F (F+k)^2)] / (2 (F+k))``, ``U = (F+k) / V`` (one state when the
    discriminant is zero, e.g. ``F=0.04, k=0.06`` gives ``(0.5, 0.2)``).
    """
    if feed <= 0 or feed + kill <= 0:
        raise ValueError(f"feed and feed + kill must be positive, got feed={feed}, kill={kill}")
    states = [(1.0, 0.0)]
    rate = feed + kill
    discriminant = feed**2 - 4 * feed * rate**2
    if discriminant < -_DISCRIMINANT_RTOL * feed**2:
        return states
    root = max(discriminant, 0.0) ** 0.5
    for v in sorted({(feed + root) / (2 * rate), (feed - root) / (2 * rate)}, reverse=True):
        states.append((rate / v, v))
    return states


def jacobian(u, v, feed, kill) -> torch.Tensor:
    """Jacobian of the reaction terms ``(f, g)`` at ``(u, v)``: ``[[-V^2 - F, -2UV], [V^2, 2UV - (F+k)]]``.

    Inputs broadcast (floats or tensors); returns ``(..., 2, 2)`` in float64 for Python floats.
    """
    u, v, feed, kill = (torch.as_tensor(t, dtype=torch.float64) for t in (u, v, feed, kill))
    u, v, feed, kill = torch.broadcast_tensors(u, v, feed, kill)
    row_u = torch.stack([-v * v - feed, -2 * u * v], dim=-1)
    row_v = torch.stack([v * v, 2 * u * v - (feed + kill)], dim=-1)
    return torch.stack([row_u, row_v], dim=-2)


def jacobian_eigenvalues(u, v, feed, kill) -> torch.Tensor:
    """Complex eigenvalues ``(..., 2)`` of :func:`jacobian`; at ``(1, 0)`` they are ``-F`` and ``-(F+k)``."""
    return torch.linalg.eigvals(jacobian(u, v, feed, kill))


def dispersion_relation(u, v, feed, kill, d_u, d_v, wavenumbers: torch.Tensor) -> torch.Tensor:
    """Largest real part of the eigenvalues of ``J - q^2 diag(D_u, D_v)`` for each wavenumber ``q``.

    A perturbation ``exp(i q x)`` of the uniform state grows when this is positive. On the clip
    lattice the Laplacian's eigenvalues are ``-4 sin^2(q / 2)``: pass ``q^2`` accordingly.

    Returns:
        ``(num_wavenumbers,)`` float64.
    """
    q2 = torch.as_tensor(wavenumbers, dtype=torch.float64) ** 2
    diffusion = torch.diag(torch.tensor([float(d_u), float(d_v)], dtype=torch.float64))
    matrices = jacobian(u, v, feed, kill) - q2.view(-1, 1, 1) * diffusion
    return torch.linalg.eigvals(matrices).real.max(dim=-1).values


@dataclass
class TuringAnalysis:
    """Outcome of :func:`turing_instability` at one homogeneous state."""

    state: tuple[float, float]
    trace: float
    determinant: float
    stable_without_diffusion: bool
    unstable_with_diffusion: bool
    critical_wavenumber: float | None

    @property
    def turing_unstable(self) -> bool:
        """Stable to uniform perturbations, unstable to some spatial ones: the Turing mechanism."""
        return self.stable_without_diffusion and self.unstable_with_diffusion


def turing_instability(u, v, feed, kill, d_u, d_v) -> TuringAnalysis:
    """Turing conditions at the state ``(u, v)`` for diffusion coefficients ``d_u``, ``d_v``.

    Without diffusion the state is stable when ``tr J < 0`` and ``det J > 0``. With diffusion a
    wavenumber ``q`` destabilises it when ``h(q^2) = D_u D_v q^4 - (D_v J_uu + D_u J_vv) q^2 + det J < 0``,
    possible iff ``D_v J_uu + D_u J_vv > 0`` and ``(D_v J_uu + D_u J_vv)^2 > 4 D_u D_v det J``;
    ``critical_wavenumber`` minimises ``h``: ``q_c^2 = (D_v J_uu + D_u J_vv) / (2 D_u D_v)``. Requires different rates, which is why RDMF
    keeps ``D_u > D_v``.
    """
    jac = jacobian(u, v, feed, kill)
    j_uu, j_uv, j_vu, j_vv = (float(t) for t in jac.reshape(4))
    trace, determinant = j_uu + j_vv, j_uu * j_vv - j_uv * j_vu
    mixed = float(d_v) * j_uu + float(d_u) * j_vv
    unstable = mixed > 0 and mixed**2 > 4 * float(d_u) * float(d_v) * determinant
    critical = (mixed / (2 * float(d_u) * float(d_v))) ** 0.5 if mixed > 0 else None
    return TuringAnalysis(
        state=(float(u), float(v)),
        trace=trace,
        determinant=determinant,
        stable_without_diffusion=trace < 0 and determinant > 0,
        unstable_with_diffusion=unstable,
        critical_wavenumber=critical,
    )


def euler_stability_bound(dt: float) -> float:
    """Largest diffusion coefficient forward Euler tolerates on the 3-tap Laplacian: ``D <= 1 / (2 dt)``."""
    return 0.5 / dt
