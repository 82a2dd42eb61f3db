"""best's quality on the shipped small suite, against optima the exact MILP proves (slow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slimcaching.algorithms import run
from slimcaching.instances.io import read_instance
from slimcaching.result import Status

SMALL = sorted((Path(__file__).resolve().parents[1] / "instances" / "small").glob("small-*.json"))


@pytest.mark.slow
def test_best_keeps_its_quality_on_the_small_suite():
    """Mean R(best) / R(opt) >= 0.99 and minimum >= 0.95 over the instances proven optimal."""
    ratios = []
    for f in SMALL:
        inst = read_instance(f)
        opt = run(inst, "exact", time_limit=20.0)
        if opt.status != Status.OPTIMAL:
            continue
        res = run(inst, "best", seed=0)
        r_opt = opt.empty_latency - opt.latency
        ratios.append(1.0 if r_opt <= 1e-12 * opt.empty_latency else res.reduction / r_opt)
    assert len(ratios) >= 45, f"only {len(ratios)} of {len(SMALL)} instances proven optimal"
    assert np.mean(ratios) >= 0.99 and np.min(ratios) >= 0.95, (np.mean(ratios), np.min(ratios))
