"""σ schedules and the NCSNv2 rules against their formulas and published values."""

import math

import numpy as np
import pytest
from scipy.stats import norm

from engine.samplers.schedules import (ScheduleError, annealed_step_sizes, code_to_paper_step,
                                      geometric_sigmas, largest_pairwise_distance, levels_for,
                                      ncsnv2_schedule, ncsnv2_step_size, overlap,
                                      paper_to_code_step, ratio_from_overlap, step_rule_objective)


def test_geometric_sigmas_have_constant_ratio_and_endpoints():
    s = geometric_sigmas(20.0, 1.0, 10)
    assert s[0] == pytest.approx(20.0) and s[-1] == pytest.approx(1.0) and len(s) == 10
    ratios = np.array(s[:-1]) / np.array(s[1:])
    assert np.allclose(ratios, ratios[0]) and ratios[0] == pytest.approx(20 ** (1 / 9))


@pytest.mark.parametrize("args", [(1.0, 2.0, 5), (1.0, 0.0, 5), (1.0, 0.5, 0), (float("nan"), 1.0, 3)])
def test_impossible_schedules_raise(args):
    with pytest.raises(ScheduleError):
        geometric_sigmas(*args)


def test_largest_pairwise_distance_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 7))
    brute = max(np.linalg.norm(a - b) for a in x for b in x)
    assert largest_pairwise_distance(x) == pytest.approx(brute, rel=1e-9)


def test_overlap_rule_matches_formula_and_mnist_ratio():
    with pytest.raises(ScheduleError, match="high-dimensional"):
        ratio_from_overlap(2)
    for dim in [100, 784, 3072]:
        gamma = ratio_from_overlap(dim)
        a = math.sqrt(2 * dim) * (gamma - 1)
        assert norm.cdf(a + 3 * gamma) - norm.cdf(a - 3 * gamma) == pytest.approx(0.5, abs=1e-9)
        assert overlap(gamma, dim) == pytest.approx(0.5, abs=1e-9)
    assert ratio_from_overlap(784) == pytest.approx(1.08, abs=0.005)  # REFERENCES: γ ≈ 1.08 for MNIST
    assert 90 <= levels_for(25.0, 0.01, ratio_from_overlap(784)) <= 110


def test_step_size_rule_reproduces_ncsnv2_cifar10_config():
    # CIFAR-10: σ 50 → 0.01 over L = 232 levels, T = 5 → ε = 6.2e-6 (code form)
    gamma = (50 / 0.01) ** (1 / 231)
    alpha = ncsnv2_step_size(0.01, gamma, 5)  # paper form
    eps = paper_to_code_step(alpha)
    assert eps == pytest.approx(6.2e-6, rel=0.01)
    # "as close to 1 as possible": ε is the minimiser of |f(ε) − 1| (f never reaches 1 here)
    dist = lambda e: abs(step_rule_objective(e, 0.01, gamma, 5) - 1)  # noqa: E731
    assert dist(eps) <= min(dist(eps * 0.9), dist(eps * 1.1))
    assert dist(eps) < 0.06
    assert code_to_paper_step(eps) == pytest.approx(2 * eps) and alpha == 2 * eps


def test_annealed_step_sizes_are_eps_sigma_ratio_squared():
    sigmas = (20.0, 5.0, 2.0, 1.0)
    assert annealed_step_sizes(0.1, sigmas) == pytest.approx((40.0, 2.5, 0.4, 0.1))
    assert annealed_step_sizes(0.3, (0.5,)) == (0.3,)  # one level: α = ε


def test_ncsnv2_schedule_from_data_is_consistent():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(200, 4, 4))
    sched = ncsnv2_schedule(x, sigma_min=0.01, steps_per_level=5)
    assert sched["dim"] == 16
    assert sched["sigma_max"] == pytest.approx(largest_pairwise_distance(x))
    assert sched["sigmas"][0] == pytest.approx(sched["sigma_max"]) and sched["sigmas"][-1] == pytest.approx(0.01)
    assert len(sched["sigmas"]) == sched["levels"]
    realised = sched["sigmas"][0] / sched["sigmas"][1]
    assert realised <= sched["gamma"] + 1e-9  # ceil(levels) never spaces levels wider than γ
    assert sched["step_size"] == pytest.approx(2 * sched["step_size_code"])
