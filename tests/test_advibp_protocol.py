"""The sweep gives AdvIBP fan2021's warm-up: the FGSM phase [t_nat, t_nat + t_adv) runs at the target ε."""

import numpy as np
import pytest

from ntkflow.sweep.cells import eps_schedule
from ntkflow.sweep.config import DEFAULTS


def _cfg(**train):
    t = dict(DEFAULTS["train"])
    t.update(train)
    return {"train": t}


@pytest.mark.parametrize("method", ["advibp", "advibp_fixed"])
def test_fgsm_warmup_at_target_eps(method):
    # the methods.toml setting: a ramp schedule by default, eps_warmup shorter than t_nat + t_adv
    cfg = _cfg(t_nat=2.0, t_adv=2.0, eps_warmup=1.0, eps_ramp=4.0)
    sch = eps_schedule(cfg, method)
    target = 0.04
    assert sch(0.5, target) == 0.0 and sch(1.9, target) == 0.0  # clean warm-up
    for e in np.linspace(2.0, 3.99, 7):  # FGSM warm-up at ε_train (Alg. 2)
        assert sch(float(e), target) == pytest.approx(target)
    assert sch(4.0, target) == 0.0 and sch(6.0, target) == pytest.approx(target / 2)  # joint: ramp from 0
    assert sch(100.0, target) == pytest.approx(target)


def test_other_methods_keep_the_ramp():
    cfg = _cfg(t_nat=2.0, t_adv=2.0, eps_warmup=1.0, eps_ramp=4.0)
    sch = eps_schedule(cfg, "ibp")
    assert sch(0.5, 0.04) == 0.0 and sch(3.0, 0.04) == pytest.approx(0.02)
