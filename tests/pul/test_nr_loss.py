"""The response-map loss family (bce, soft_bce, nr, nr_exact), its noise prior and config."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from jobs.config import field_docs, from_dict
from pul.labels import balanced_weights, label_maps
from pul.losses import LossConfig, balanced_bce, response_loss, sigma_from_cycle_errors
from pul.losses.noise import ROWS, pair_sigma, row_prior
from pul.losses.nr import PAIR_LOSSES, label_states, pair_loglik

KINDS = ["bce", "soft_bce", "nr", "nr_exact"]


def _disc_logits(centre_xy: list[float], scale: float, size: int = 17) -> torch.Tensor:
    """Logits +scale on the label disc at `centre_xy`, -scale elsewhere: 1 x 1 x S x S."""
    labels = label_maps(torch.tensor([centre_xy]), size, 8, 16.0)
    return scale * (2 * labels - 1)


def _unclamped_nr(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return -torch.log((p * (1 + g + 0.5 * g**2)).sum(-1))


# --- the noise prior -------------------------------------------------------------------


@pytest.mark.parametrize("sigma", [0.5, 4.0, 20.0])
def test_row_prior_has_mass_one_mean_c_and_std_sigma(sigma):
    centre = torch.tensor([3.0], dtype=torch.float64)
    rows, mass = row_prior(centre, torch.tensor([sigma], dtype=torch.float64), band=1e6)
    assert rows.shape == mass.shape == (1, ROWS)
    assert mass.sum().item() == pytest.approx(1.0, abs=1e-12)
    mean = (mass * rows).sum().item()
    std = math.sqrt((mass * (rows - mean) ** 2).sum().item())
    assert mean == pytest.approx(3.0, abs=1e-9)
    assert std == pytest.approx(sigma, rel=0.02)  # midpoints of 24 cells over +/- 4 sigma


def test_row_prior_leaves_out_the_mass_beyond_the_band():
    sigma = torch.tensor([0.0, 50.0, 10.0], dtype=torch.float64)
    centre = torch.tensor([5.0, 0.0, 200.0], dtype=torch.float64)
    rows, mass = row_prior(centre, sigma, band=80.0)
    assert torch.all(rows[0] == 5.0) and mass[0].sum().item() == 1.0  # sigma 0: all at c
    inside = math.erf(80.0 / (50.0 * math.sqrt(2)))  # P(|t_y| <= 80)
    assert mass[1].sum().item() == pytest.approx(inside, abs=1e-9)
    assert rows[1].abs().max().item() < 80.0
    # the whole prior lies beyond the band: rows out of reach (empty maps), or no mass
    assert rows[2].min().item() > 80.0 and mass[2].sum().item() < 1e-4


def test_per_pair_sigma_gives_each_pair_its_own_prior():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(3, 1, 17, 17, generator=gen, dtype=torch.float64) * 2
    # (1.3, -0.7): no cell centre exactly on the disc's edge, where sigma -> 0 and sigma = 0
    # differ (a closed disc; the continuous prior gives its edge no mass)
    targets = torch.tensor([[1.3, -0.7], [13.0, -7.0], [-30.0, 20.0]], dtype=torch.float64)
    sigmas = torch.tensor([0.0, 3.0, 20.0], dtype=torch.float64)
    g, p = pair_loglik(logits, targets, sigmas)
    crossings = 2 * 5 * 17  # the 5 cell rows within 16 px of a row, 17 cells each, in + out
    assert g.shape == p.shape == (3, ROWS * (crossings + 1) + 1)
    assert p.sum(-1).tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-9)
    for b in range(3):
        own = PAIR_LOSSES["soft_bce"](
            *pair_loglik(logits[b : b + 1], targets[b : b + 1], float(sigmas[b]))
        )
        assert PAIR_LOSSES["soft_bce"](g[b : b + 1], p[b : b + 1]).item() == pytest.approx(
            own.item(), rel=1e-6
        )


def _cycle_errors(sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Round-trip error vectors: forward error + independent backward error, N x 2."""
    return rng.normal(0, sigma, (n, 2)) + rng.normal(0, sigma, (n, 2))


def test_sigma_from_cycle_errors_recovers_sigma():
    rng = np.random.default_rng(0)
    errors = _cycle_errors(5.0, 10_000, rng)
    assert sigma_from_cycle_errors(errors) == pytest.approx(5.0, rel=0.05)
    lengths = np.linalg.norm(errors, axis=1)
    assert sigma_from_cycle_errors(lengths) == sigma_from_cycle_errors(errors)
    with pytest.raises(ValueError, match="no finite"):
        sigma_from_cycle_errors(np.array([np.nan]))


def test_sigma_from_cycle_errors_is_robust_and_undoes_truncation():
    rng = np.random.default_rng(1)
    lengths = np.linalg.norm(_cycle_errors(5.0, 10_000, rng), axis=1)
    lost = np.concatenate([lengths, np.full(500, 200.0)])  # 5% lost tracks
    assert sigma_from_cycle_errors(lost) == pytest.approx(5.0, rel=0.06)
    assert math.sqrt(np.mean(lost**2)) / 2 > 2 * 5.0  # the mean-square estimate is ruined
    limit = float(np.quantile(lengths, 0.6))  # mining kept only cycle errors below this
    kept = lengths[lengths <= limit]
    assert sigma_from_cycle_errors(kept) < 0.85 * 5.0  # truncation biases it low
    assert sigma_from_cycle_errors(kept, max_error_px=limit) == pytest.approx(5.0, rel=0.05)


def test_pair_sigma_matches_the_label_error_of_kept_pairs():
    rng = np.random.default_rng(2)
    sigma, limit = 5.0, 6.0  # a tight cycle test: kept pairs are the well-localised ones
    forward = rng.normal(0, sigma, (40_000, 2))
    cycle = np.linalg.norm(forward + rng.normal(0, sigma, (40_000, 2)), axis=1)
    kept = cycle <= limit
    label_var = forward[kept].var(axis=0).mean()  # per axis, over the kept pairs
    per_pair = pair_sigma(sigma, torch.from_numpy(cycle[kept]))
    assert (per_pair**2).mean().item() == pytest.approx(label_var, rel=0.03)
    closed = sigma**2 - limit**2 / (8 * math.expm1(limit**2 / (4 * sigma**2)))
    assert closed == pytest.approx(label_var, rel=0.03) and closed < 0.65 * sigma**2
    # a pair with a small cycle error is better localised than one with a large one
    var_small = forward[cycle <= 2.0].var(axis=0).mean()
    assert var_small < label_var and pair_sigma(sigma, torch.tensor([1.0])).item() ** 2 < label_var


def test_pair_sigma_of_a_numpy_array_is_the_same_numbers_as_an_array():
    errors = np.array([0.0, 2.0, 6.0])
    as_array = pair_sigma(3.0, errors)
    assert isinstance(as_array, np.ndarray) and as_array.dtype == np.float64
    # sqrt(9 / 2 + e^2 / 8) = sqrt(4.5), sqrt(5), sqrt(9)
    assert as_array == pytest.approx([math.sqrt(4.5), math.sqrt(5.0), 3.0], rel=1e-12)
    assert pair_sigma(3.0, torch.from_numpy(errors)).numpy() == pytest.approx(as_array, rel=1e-6)


# --- the losses ------------------------------------------------------------------------


def test_bce_kind_is_balanced_bce_and_sigma_zero_variants():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 17, 17, generator=gen) * 3
    targets = torch.tensor([[0.0, 0.0], [13.0, -7.0], [-40.0, 22.0], [150.0, 0.0]])
    bce = balanced_bce(logits, targets)
    assert response_loss("bce", logits, targets).item() == pytest.approx(bce.item(), abs=1e-6)
    assert response_loss("bce", logits, targets, 30.0).item() == pytest.approx(bce.item(), abs=1e-6)
    for kind in ("soft_bce", "nr_exact"):  # K = 1, p = 1: both reduce to -g = bce
        assert response_loss(kind, logits, targets, 0.0).item() == pytest.approx(bce.item(), 1e-6)
    per_pair = torch.stack([balanced_bce(logits[i : i + 1], targets[i : i + 1]) for i in range(4)])
    gc = (-per_pair).clamp(min=-1)
    expected_nr = -torch.log(1 + gc + gc**2 / 2).mean()
    nr = response_loss("nr", logits, targets, 0.0)
    assert nr.item() == pytest.approx(expected_nr.item(), abs=1e-6)
    assert nr.item() < bce.item()  # q(g) >= exp(g) for g <= 0


def test_state_form_equals_the_supplement_quadratic_form():
    """E[g], E[g^2] over the label states vs mbar / V (supplement Eq. 3-5), built explicitly
    from the label map at a point inside each state's interval.

    With balanced weights the "m_b" of the supplement is the weighted label w * m_b (w
    depends on the state, so it sits inside the expectation): mbar_b(x) = E[w(x) m_b(x)],
    V_bb'(x, x') = E[w(x) m_b(x) w(x') m_b'(x')].
    """
    size, sigmas, rows = 9, torch.tensor([6.0, 2.5], dtype=torch.float64), 4
    targets = torch.tensor([[3.0, -5.0], [-10.0, 7.0]], dtype=torch.float64)
    logits = torch.randn(2, 1, size, size, generator=torch.Generator().manual_seed(1)) * 2
    logits = logits.double()
    states = label_states(logits, targets, sigmas, rows=rows)
    g, p = states.g, states.p
    for b in range(2):
        h = torch.cat(
            [torch.nn.functional.logsigmoid(s).flatten() for s in (logits[b], -logits[b])]
        )
        mbar = torch.zeros(2 * size * size, dtype=torch.float64)  # (b = 1 cells, b = 0 cells)
        second = torch.zeros(2 * size * size, 2 * size * size, dtype=torch.float64)
        lo, hi = states.bounds[b, :, :-1], states.bounds[b, :, 1:]
        far = torch.tensor(1e6, dtype=torch.float64)  # infinite ends: any point far out
        inside = torch.where(
            torch.isinf(lo), hi - 1e3, torch.where(torch.isinf(hi), lo + 1e3, (lo + hi) / 2)
        )
        inside = torch.where(torch.isinf(inside), far, inside)  # rows out of reach
        points = [(x, states.rows_y[b, r]) for r in range(rows) for x in inside[r]]
        points.append((far, far))  # the empty map
        for k, (x, y) in enumerate(points):
            if p[b, k] == 0:
                continue
            m = label_maps(torch.stack([x, y])[None].float(), size, 8, 16.0).double()
            w = balanced_weights(m)
            wm = torch.cat([(w * m).flatten(), (w * (1 - m)).flatten()])  # 2N
            mbar += p[b, k] * wm
            second += p[b, k] * torch.outer(wm, wm)  # V, 2N x 2N
        assert (mbar @ h).item() == pytest.approx((p[b] * g[b]).sum().item(), abs=1e-9)
        assert (h @ second @ h).item() == pytest.approx((p[b] * g[b] ** 2).sum().item(), abs=1e-9)
        assert (mbar @ h).item() < -0.1  # a real value, not 0 = 0


def test_nr_approaches_nr_exact_as_noise_and_g_shrink():
    targets = torch.tensor([[4.0, -4.0]])
    gaps = []
    for sigma, scale in [(8.0, 1.0), (4.0, 2.0), (2.0, 3.0), (1.0, 4.0), (0.5, 5.0), (0.1, 8.0)]:
        g, p = pair_loglik(_disc_logits([4.0, -4.0], scale).double(), targets, sigma)
        gaps.append((PAIR_LOSSES["nr_exact"](g, p) - PAIR_LOSSES["nr"](g, p)).item())
    assert gaps[0] > 1e-2 and gaps[-1] < 1e-6
    assert all(0 <= after < before for before, after in zip(gaps, gaps[1:], strict=False))


def _losses_along(logits: torch.Tensor, sigma: float) -> dict[str, list[float]]:
    """Per-pair loss of each kind for a sequence of predictions (the batch) of one target."""
    targets = torch.tensor([[4.0, -4.0]]).expand(logits.shape[0], 2)
    out = {}
    for kind in KINDS:
        g, p = pair_loglik(logits, targets, 0.0 if kind == "bce" else sigma)
        out[kind] = PAIR_LOSSES[kind](g, p).tolist()
    g, p = pair_loglik(logits, targets, sigma)
    out["unclamped"] = _unclamped_nr(g, p).tolist()
    return out


def _non_decreasing(values: list[float]) -> bool:
    return all(b >= a - 1e-6 for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize("sigma", [0.0, 8.0])
def test_loss_never_decreases_as_the_prediction_gets_more_confidently_wrong(sigma):
    """A disc predicted 78 px from the target, beyond every plausible offset, ever sharper."""
    scales = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    logits = torch.cat([_disc_logits([-56.0, 46.0], a) for a in scales])  # 8 x 1 x S x S
    losses = _losses_along(logits, sigma)
    for kind in KINDS:
        assert _non_decreasing(losses[kind]), kind
        assert losses[kind][-1] > losses[kind][0] + 0.05, kind
    # without the clamp the Taylor form rewards it once g < -1: the guard matters
    unclamped = losses["unclamped"]
    assert unclamped[-1] < unclamped[3] - 3.0 and unclamped[-1] < 0


@pytest.mark.parametrize("sigma", [0.0, 4.0, 8.0])
def test_loss_never_decreases_as_the_peak_moves_away(sigma):
    """A sharp disc at the target, then ever farther; it stays inside the 17 x 17 map."""
    logits = torch.cat([_disc_logits([4.0 + d, -4.0], 6.0) for d in range(0, 48, 4)])
    losses = _losses_along(logits, sigma)
    for kind in KINDS:
        assert _non_decreasing(losses[kind]), kind
        assert losses[kind][-1] > losses[kind][0] + 0.05, kind


def test_nr_is_bounded_and_gives_hopeless_pairs_no_gradient():
    gen = torch.Generator().manual_seed(2)
    targets = torch.tensor([[0.0, 0.0], [20.0, 10.0], [-30.0, 5.0]])
    for scale in (0.01, 1.0, 10.0, 1000.0):
        g, p = pair_loglik(torch.randn(3, 1, 17, 17, generator=gen) * scale, targets, 6.0)
        loss = PAIR_LOSSES["nr"](g, p)
        assert (loss >= 0).all() and (loss <= math.log(2) + 1e-6).all()
    wrong = _disc_logits([-56.0, 46.0], 16.0).requires_grad_()
    loss = response_loss("nr", wrong, torch.tensor([[4.0, -4.0]]), 8.0)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2), abs=1e-6)  # every g_k <= -1
    assert wrong.grad.abs().max().item() == 0.0
    fresh = torch.zeros(1, 1, 17, 17, requires_grad=True)  # f = 0.5: g = -log 2 > -1
    response_loss("nr", fresh, torch.tensor([[4.0, -4.0]]), 8.0).backward()
    assert fresh.grad.abs().max().item() > 1e-3


@pytest.mark.parametrize("sigma", [0.0, 50.0, torch.tensor([0.0, 200.0, 7.0])])
def test_gradients_are_finite_at_extreme_logits(sigma):
    gen = torch.Generator().manual_seed(3)
    targets = torch.tensor([[0.0, 0.0], [60.0, -60.0], [300.0, 0.0]])
    signs = torch.randn(3, 1, 17, 17, generator=gen).sign()
    for logits in (signs * 1e4, torch.randn(3, 1, 17, 17, generator=gen) * 1e4):
        for kind in KINDS:
            leaf = logits.clone().requires_grad_()
            loss = response_loss(kind, leaf, targets, sigma)
            loss.backward()
            assert torch.isfinite(loss) and torch.isfinite(leaf.grad).all(), kind


def test_response_loss_rejects_bad_input():
    logits, targets = torch.zeros(2, 1, 9, 9), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="kind"):
        response_loss("focal", logits, targets)
    with pytest.raises(ValueError, match="sigma_px"):
        response_loss("nr", logits, targets, -1.0)
    with pytest.raises(ValueError, match="sigma_px"):
        response_loss("nr", logits, targets, torch.ones(3))
    for bad in ([1.0, -1.0], [1.0, math.nan]):
        with pytest.raises(ValueError, match="sigma_px"):
            response_loss("nr", logits, targets, torch.tensor(bad))
    with pytest.raises(ValueError, match="B x 1 x S x S"):
        response_loss("nr", torch.zeros(2, 9, 9), targets)


# --- the config ------------------------------------------------------------------------


def test_loss_config_parses_and_validates():
    cfg = LossConfig()
    assert (cfg.kind, cfg.noise, cfg.radius) == ("nr", "auto", 16.0)
    assert cfg.noise_px(6.5) == 6.5
    with pytest.raises(ValueError, match="auto"):
        cfg.noise_px()
    assert LossConfig(noise="8").noise_px(3.0) == 8.0  # a number ignores the estimate
    assert LossConfig(noise=0).noise == 0.0
    for bad in ({"kind": "focal"}, {"noise": "big"}, {"noise": -1.0}, {"radius": 0.0}):
        with pytest.raises(ValueError):
            LossConfig(**bad)
    # what YAML and `loss.noise=8` overrides produce: an int or the string 'auto'
    assert from_dict(LossConfig, {"noise": 8}).noise == 8.0
    assert from_dict(LossConfig, {"noise": "auto", "kind": "soft_bce"}).kind == "soft_bce"
    assert set(field_docs(LossConfig)) == {"kind", "noise", "radius"}


def test_loss_config_takes_pair_as_an_estimated_noise():
    cfg = from_dict(LossConfig, {"noise": "pair"})
    assert (cfg.noise, cfg.estimated) == ("pair", True)
    assert LossConfig().estimated and not LossConfig(noise=8).estimated
    assert cfg.noise_px(2.5) == 2.5
    with pytest.raises(ValueError, match="'pair' but no estimate"):
        cfg.noise_px()
    with pytest.raises(ValueError, match="a number of pixels, 'auto' or 'pair', got 'pairs'"):
        LossConfig(noise="pairs")
    assert "'pair'" in field_docs(LossConfig)["noise"]
