"""Attribution engine: conservation, isolation, symmetry, policies, accuracy on synthetic truth."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from joulecast.errors import TelemetryError
from joulecast.mig.attribute import attribute, attribute_gpu
from joulecast.mig.frame import GpuTelemetry
from joulecast.mig.methods import (
    METHOD_NAMES,
    OnlineConfig,
    contention_shares,
    detect_regimes,
    estimate_sensor,
    fit_window,
    model_inputs,
    online_fit,
    sensor_filter,
)
from joulecast.mig.readers import read_long_csv
from joulecast.mig.synth import SCENARIOS, SynthRun, generate


def _gpu(run: SynthRun) -> GpuTelemetry:
    return read_long_csv(run.to_long_csv()).gpus[0]


@pytest.mark.parametrize("method", METHOD_NAMES)
@pytest.mark.parametrize("policy", ["reserved", "active-only", "proportional", "unattributed"])
def test_conservation_every_method_and_policy(
    small_run: SynthRun, method: str, policy: str
) -> None:
    r = attribute_gpu(_gpu(small_run), method=method, static_policy=policy)
    parts = r.static_energy_j + r.dynamic_energy_j + r.residual_j
    assert parts == pytest.approx(r.energy_j, rel=1e-9)
    assert sum(i.static_energy_j for i in r.instances) + r.static_unattributed_j == pytest.approx(
        r.static_energy_j, rel=1e-9
    )
    assert all(i.dynamic_energy_j >= 0 for i in r.instances)


def test_isolation_one_active_instance_gets_all_dynamic(small_run: SynthRun) -> None:
    g = _gpu(small_run)
    act = g.activity.copy()
    act[:, 1, :] = 0.0
    iso = replace(g, activity=act)
    for method in ("online", "activity", "kepler", "ceems", "offline"):
        r = attribute_gpu(iso, method=method, idle_power_w=60.0)
        assert r.instances[1].dynamic_energy_j == 0.0
        assert r.instances[0].dynamic_energy_j == pytest.approx(r.dynamic_energy_j)


def test_relabelling_instances_does_not_change_shares(mixed_run: SynthRun) -> None:
    g = _gpu(mixed_run)
    perm = [2, 0, 3, 1]
    swapped = replace(
        g,
        instances=tuple(g.instances[p] for p in perm),
        activity=g.activity[:, perm],
        present=g.present[:, perm],
        gap_samples=g.gap_samples[perm],
    )
    a = attribute_gpu(g, method="online")
    b = attribute_gpu(swapped, method="online")
    ea = {i.gpu_instance_id: i.dynamic_energy_j for i in a.instances}
    eb = {i.gpu_instance_id: i.dynamic_energy_j for i in b.instances}
    for k in ea:
        assert eb[k] == pytest.approx(ea[k], rel=1e-6)


def test_symmetry_identical_instances_get_identical_shares(small_run: SynthRun) -> None:
    g = _gpu(small_run)
    inst = (g.instances[1], replace(g.instances[1], gpu_instance_id="9"))
    act = np.repeat(g.activity[:, 1:2], 2, axis=1)
    twin = replace(
        g,
        instances=inst,
        activity=act,
        present=np.ones((g.time_s.size, 2), bool),
        gap_samples=np.zeros(2, dtype=np.int64),
    )
    r = attribute_gpu(twin, method="online")
    assert r.instances[0].dynamic_energy_j == pytest.approx(
        r.instances[1].dynamic_energy_j, rel=1e-6
    )


def test_online_recovers_linear_truth() -> None:
    rng = np.random.default_rng(0)
    n = 2000
    feats = rng.uniform(0, 1, (n, 3, 5)) * (rng.random((n, 3, 1)) < 0.6)
    beta = rng.uniform(10, 100, (3, 5))
    power = 50 + np.einsum("tnk,nk->t", feats, beta)
    fit = fit_window(power, feats, idle_power_w=None, shrink=0.0, lockstep_corr=0.999)
    assert fit.intercept_w == pytest.approx(50.0, abs=0.5)
    assert np.allclose(fit.beta, beta, rtol=0.02)


def test_lockstep_does_not_blow_up() -> None:
    rng = np.random.default_rng(1)
    n = 1500
    base = rng.uniform(0, 1, (n, 1, 5)) * (rng.random((n, 1, 1)) < 0.5)
    feats = np.concatenate([base, base, rng.uniform(0, 1, (n, 1, 5))], axis=1)
    power = 60 + feats.sum(axis=(1, 2)) * 40
    fit = fit_window(power, feats, idle_power_w=None, shrink=0.01, lockstep_corr=0.97)
    assert fit.lockstep == ((0, 1),)
    assert np.allclose(fit.beta[0], fit.beta[1])
    assert np.isfinite(fit.beta).all() and fit.beta.max() < 200


def test_online_beats_kepler_on_synthetic_truth(mixed_run: SynthRun) -> None:
    g = _gpu(mixed_run)
    truth = dict(zip(mixed_run.instance_ids, mixed_run.true_dynamic_energy_j(), strict=True))

    def worst(method: str) -> float:
        r = attribute_gpu(g, method=method)
        return max(abs(i.dynamic_energy_j / truth[i.gpu_instance_id] - 1) for i in r.instances)

    assert worst("online") < 0.05
    assert worst("online") < worst("kepler") / 5


def test_energy_counter_reset_uses_power(small_run: SynthRun) -> None:
    g = _gpu(small_run)
    p = g.board_power_w
    energy = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(g.time_s))])
    energy[len(energy) // 2 :] -= energy[len(energy) // 2]  # counter reset halfway
    r0 = attribute_gpu(g, method="slice")
    r1 = attribute_gpu(replace(g, energy_counter_j=energy), method="slice")
    assert r1.energy_j == pytest.approx(r0.energy_j, rel=1e-6)
    assert any("reset" in str(n) for n in r1.diagnostics["notes"])  # type: ignore[attr-defined]


def test_unknown_method_and_policy(small_run: SynthRun) -> None:
    tel = read_long_csv(small_run.to_long_csv())
    with pytest.raises(TelemetryError, match="unknown method"):
        attribute(tel, method="magic")
    with pytest.raises(TelemetryError, match="unknown static policy"):
        attribute(tel, static_policy="fair")


def test_given_idle_is_used(small_run: SynthRun) -> None:
    g = _gpu(small_run)
    out = online_fit(g, model_inputs(g), 70.0, OnlineConfig())
    assert np.all(out.static_w == 70.0)
    r = attribute_gpu(g, idle_power_w=70.0, static_policy="reserved")
    assert r.static_energy_j == pytest.approx(70.0 * (g.time_s[-1] - g.time_s[0]), rel=1e-9)


def _errors(
    run: SynthRun, config: OnlineConfig | None = None
) -> tuple[np.ndarray, dict[str, object]]:
    g = _gpu(run)
    out = online_fit(g, model_inputs(g), None, config)
    r = attribute_gpu(g, output=out)
    truth = dict(zip(run.instance_ids, run.true_dynamic_energy_j(), strict=True))
    err = np.array([i.dynamic_energy_j / truth[i.gpu_instance_id] - 1 for i in r.instances])
    return err, out.diagnostics


def test_sensor_lag_and_averaging_are_recovered() -> None:
    rng = np.random.default_rng(3)
    proxy = np.repeat(rng.uniform(0, 200, 400), 7)  # steps every 7 s
    power = 60 + np.concatenate([np.full(2, proxy[0]), sensor_filter(proxy, 1.0)[:-2]])
    power += rng.normal(0, 0.5, power.size)
    lag, tau = estimate_sensor(power, proxy, 3, (0.0, 0.5, 1.0, 2.0))
    assert (lag, tau) == (2, 1.0)


def test_contention_shares_add_up_to_the_shared_term() -> None:
    traffic = np.array([[0.1, 0.3, 0.0], [0.2, 0.2, 0.4]])
    shares = contention_shares(50.0, traffic)
    assert np.allclose(shares.sum(axis=1), 50.0 * traffic.sum(axis=1) ** 2)
    assert shares[0, 2] == 0.0 and shares[0, 1] == pytest.approx(3 * shares[0, 0])


def test_fit_window_recovers_shared_contention() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    feats = rng.uniform(0, 0.3, (n, 3, 5)) * (rng.random((n, 3, 1)) < 0.6)
    beta = rng.uniform(20, 120, (3, 5))
    traffic = feats[:, :, 1]
    power = 55 + np.einsum("tnk,nk->t", feats, beta) + 80 * traffic.sum(axis=1) ** 2
    fit = fit_window(
        power, feats, idle_power_w=None, shrink=0.0, lockstep_corr=0.999, traffic=traffic
    )
    assert fit.contention_w == pytest.approx(80.0, rel=0.02)
    assert fit.intercept_w == pytest.approx(55.0, abs=0.5)


def test_regimes_follow_workload_switches_only() -> None:
    run = generate(SCENARIOS["tune-7x1g-switch"], 11)
    g = _gpu(run)
    inputs = model_inputs(g)
    labels = detect_regimes(inputs, min_busy=300, min_shift=0.2, max_regimes=4)
    switching = [len(i.workloads) > 1 for i in run.scenario.instances]
    assert [int(labels[:, i].max()) + 1 for i in range(7)] == [2 if s else 1 for s in switching]
    # The switch is at half time; the change point is found within a few minutes of it.
    first = int(np.argmax(labels[:, 0] == 1))
    assert abs(g.time_s[first] - 3600.0) < 300.0


def test_regimes_and_contention_each_improve_accuracy() -> None:
    run = generate(SCENARIOS["tune-7x1g-switch"], 11)
    full, _ = _errors(run)
    assert np.abs(full).max() < 0.02
    no_regimes, _ = _errors(run, OnlineConfig(regimes=False))
    no_contention, _ = _errors(run, OnlineConfig(contention=False))
    assert np.abs(no_regimes).max() > 2 * np.abs(full).max()
    assert np.abs(no_contention).max() > 5 * np.abs(full).max()


def test_power_cap_is_detected_and_handled() -> None:
    run = generate(SCENARIOS["tune-4g3g-cap"], 14)
    err, diag = _errors(run)
    assert diag["cap_passes"] == 2 and diag["power_ceiling_w"] is not None
    assert np.abs(err).max() < 0.03
    ignored, _ = _errors(run, OnlineConfig(cap_knee=1.0))
    assert np.abs(ignored).max() > 0.08


def test_no_cap_detected_on_uncapped_run(mixed_run: SynthRun) -> None:
    _, diag = _errors(mixed_run)
    assert diag["cap_passes"] == 0 and diag["power_ceiling_w"] is None
