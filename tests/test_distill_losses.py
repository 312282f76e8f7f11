"""ARMADA's losses against values computed by hand, and the orthogonal projections."""

from __future__ import annotations

import math

import pytest
import torch

from armada.distill.heads import StudentHeads, TSAligner, plain_state_dict
from armada.distill.losses import aligner_losses, kd_loss, manifold_loss, soft_loss, student_losses, task_loss, weighted_terms

LN3 = math.log(3.0)


def test_task_loss_is_cross_entropy_for_classes_and_choices():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert task_loss("classification", logits, torch.tensor([0, 1])).item() == pytest.approx(expected)
    assert task_loss("multiple_choice", logits, torch.tensor([0, 1])).item() == pytest.approx(expected)


def test_task_loss_is_mse_for_regression():
    assert task_loss("regression", torch.tensor([[1.0], [3.0]]), torch.tensor([0.0, 1.0])).item() == pytest.approx(2.5)


def test_soft_l2_is_the_batch_mean_of_per_example_norms_of_softened_differences():
    # τ = 2: student logits (2·ln3, 0) soften to (0.75, 0.25), teacher (0, 0) to (0.5, 0.5).
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    student = torch.tensor([[2 * LN3, 0.0], [1.0, 1.0]])
    per_example = [0.25 * math.sqrt(2), 0.0]
    assert soft_loss("classification", teacher, student, 2.0, "l2").item() == pytest.approx(sum(per_example) / 2)


def test_soft_mse_is_the_mean_squared_softened_difference_times_tau_squared():
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    student = torch.tensor([[2 * LN3, 0.0], [1.0, 1.0]])
    # Squared differences 0.0625, 0.0625, 0, 0 → mean 0.03125, × τ² = 4.
    assert soft_loss("classification", teacher, student, 2.0, "mse").item() == pytest.approx(0.125)


def test_soft_loss_for_regression_uses_the_identity():
    teacher, student = torch.tensor([[2.0], [1.0]]), torch.tensor([[0.0], [1.0]])
    assert soft_loss("regression", teacher, student, 2.0, "l2").item() == pytest.approx((1.0 + 0.0) / 2)
    assert soft_loss("regression", teacher, student, 2.0, "mse").item() == pytest.approx((4.0 + 0.0) / 2)


def test_kd_loss_is_tau_squared_times_the_kl_from_the_softened_teacher_to_the_softened_student():
    teacher, student, tau = torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 3.0]]), torch.tensor([[0.3, 0.2, -0.4], [1.0, -2.0, 0.5]]), 3.0
    p, q = (teacher / tau).softmax(-1), (student / tau).softmax(-1)
    expected = tau**2 * (p * (p.log() - q.log())).sum(-1).mean()
    assert kd_loss("classification", teacher, student, tau).item() == pytest.approx(expected.item(), rel=1e-6)
    assert kd_loss("multiple_choice", teacher, teacher.clone(), tau).item() == pytest.approx(0.0, abs=1e-7)
    scores_t, scores_s = torch.tensor([[1.5], [4.0]]), torch.tensor([[1.0], [3.0]])
    assert kd_loss("regression", scores_t, scores_s, tau).item() == pytest.approx((0.25 + 1.0) / 2)


def test_manifold_losses():
    p_ts = torch.tensor([[1.0, 0.0], [3.0, 0.0]])       # mean (2, 0)
    p_s = torch.tensor([[0.0, 0.0], [0.0, 2.0]])        # mean (0, 1)
    assert manifold_loss("euclid", p_ts, p_s, "norm").item() == pytest.approx(math.sqrt(5))
    assert manifold_loss("elementwise", p_ts, p_s, "norm").item() == pytest.approx((1 + math.sqrt(13)) / 2)
    assert manifold_loss("cosine", p_ts, p_s, "norm").item() == pytest.approx(1.0)
    assert manifold_loss("cosine", p_ts, torch.tensor([[1.0, 1.0], [1.0, 1.0]]), "norm").item() == pytest.approx(1 - 1 / math.sqrt(2))
    assert manifold_loss("cosine", p_ts, 5 * p_ts, "norm").item() == pytest.approx(0.0, abs=1e-6)


def test_the_mse_forms_are_the_authors_mean_squared_differences():
    p_ts = torch.tensor([[1.0, 0.0], [3.0, 0.0]])       # mean (2, 0)
    p_s = torch.tensor([[0.0, 0.0], [0.0, 2.0]])        # mean (0, 1)
    assert manifold_loss("euclid", p_ts, p_s, "mse").item() == pytest.approx((4 + 1) / 2)
    assert manifold_loss("elementwise", p_ts, p_s, "mse").item() == pytest.approx((1 + 0 + 9 + 4) / 4)
    assert manifold_loss("cosine", p_ts, p_s, "mse").item() == manifold_loss("cosine", p_ts, p_s, "norm").item()
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(32, 768, generator=generator), torch.randn(32, 768, generator=generator)
    assert torch.allclose(manifold_loss("euclid", a, b, "mse"), torch.nn.functional.mse_loss(a.mean(0), b.mean(0)))
    assert torch.allclose(manifold_loss("elementwise", a, b, "mse"), torch.nn.functional.mse_loss(a, b))


def test_weighted_terms_sum_to_the_student_loss():
    generator = torch.Generator().manual_seed(0)
    o_s, o_aux_s, p_s = (torch.randn(4, 3, generator=generator), torch.randn(4, 3, generator=generator),
                         torch.randn(4, 6, generator=generator))
    aligner = (torch.randn(4, 3, generator=generator), torch.randn(4, 6, generator=generator), torch.randn(4, 3, generator=generator))
    weights = {"alpha": 0.3, "beta": 2.0, "gamma": 0.5}
    parts = student_losses("classification", torch.tensor([0, 1, 2, 0]), o_s, p_s, o_aux_s, aligner, tau=5.0,
                           soft_form="mse", manifold="euclid", manifold_form="mse", **weights)
    terms = weighted_terms(parts, **weights)
    assert list(terms) == ["task", "soft", "aux", "manifold"]
    assert sum(terms.values()).item() == pytest.approx(parts["loss_s"].item())


def test_the_elementwise_loss_bounds_the_euclid_loss():   # Proposition 1's triangle inequality
    generator = torch.Generator().manual_seed(0)
    p_ts, p_s = torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator)
    assert manifold_loss("elementwise", p_ts, p_s, "norm") >= manifold_loss("euclid", p_ts, p_s, "norm")


def test_aligner_total_is_first_plus_gamma_times_auxiliary():
    labels = torch.tensor([0, 1])
    o_ts, o_aux = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    parts = aligner_losses("classification", labels, o_ts, o_aux, gamma=0.5)
    first = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))) / 2
    assert parts["aligner_task"].item() == pytest.approx(first)
    assert parts["aligner_aux"].item() == pytest.approx(math.log(2))
    assert parts["loss_t"].item() == pytest.approx(first + 0.5 * math.log(2))


def test_student_total_combines_the_parts_with_alpha_beta_gamma():
    labels = torch.tensor([0, 1])
    o_s = torch.tensor([[2 * LN3, 0.0], [0.0, 0.0]])
    o_aux_s = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    p_s = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    aligner = (torch.tensor([[0.0, 0.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]]))
    parts = student_losses("classification", labels, o_s, p_s, o_aux_s, aligner, alpha=0.25, beta=2.0, gamma=0.5, tau=2.0,
                           soft_form="l2", manifold="euclid", manifold_form="norm")
    task = (-math.log(0.9) + math.log(2)) / 2                   # softmax(2·ln3, 0) = (0.9, 0.1)
    soft = (0.25 * math.sqrt(2) + 0.0) / 2
    aux = 0.75 * math.log(2) + 0.25 * 0.0                       # equal outputs: no soft part
    manifold = math.sqrt(5)
    assert parts["task"].item() == pytest.approx(task)
    assert parts["soft"].item() == pytest.approx(soft)
    assert parts["aux"].item() == pytest.approx(aux)
    assert parts["manifold"].item() == pytest.approx(manifold)
    assert parts["loss_s"].item() == pytest.approx(0.75 * task + 0.25 * soft + 0.5 * aux + 2.0 * manifold)


def test_the_student_losses_do_not_reach_the_aligner():
    o_ts = torch.tensor([[1.0, -1.0]], requires_grad=True)
    p_ts = torch.tensor([[0.5, 0.5]], requires_grad=True)
    o_aux_ts = torch.tensor([[0.0, 1.0]], requires_grad=True)
    o_s = torch.tensor([[0.0, 0.0]], requires_grad=True)
    parts = student_losses("classification", torch.tensor([0]), o_s, torch.tensor([[0.0, 1.0]], requires_grad=True),
                           torch.tensor([[0.3, 0.0]], requires_grad=True), (o_ts, p_ts, o_aux_ts), alpha=0.5, beta=1.0,
                           gamma=1.0, tau=5.0, soft_form="l2", manifold="elementwise", manifold_form="norm")
    parts["loss_s"].backward()
    assert o_s.grad is not None
    assert o_ts.grad is None and p_ts.grad is None and o_aux_ts.grad is None


def test_undistilled_is_the_task_loss_alone():
    logits, labels = torch.tensor([[2.0, 0.0]]), torch.tensor([1])
    parts = student_losses("classification", labels, logits, None, None, None, alpha=0.5, beta=1.0, gamma=1.0, tau=5.0,
                           soft_form="l2", manifold="euclid", manifold_form="norm")
    assert set(parts) == {"loss_s", "task"}
    assert parts["loss_s"].item() == pytest.approx(math.log(1 + math.exp(2)))


def _orthogonality_error(weight: torch.Tensor) -> float:
    small = min(weight.shape)
    gram = weight.T @ weight if weight.shape[0] >= weight.shape[1] else weight @ weight.T
    return (gram - torch.eye(small)).abs().max().item()


@pytest.mark.parametrize("hidden, projection", [(8, 16), (24, 16), (16, 16)])
def test_projections_stay_orthogonal_through_training(hidden, projection):
    torch.manual_seed(0)
    heads = StudentHeads(hidden, 3, projection)
    aligner = TSAligner(5, hidden, 3, projection)
    optimizer = torch.optim.AdamW([*heads.parameters(), *aligner.parameters()], lr=0.05)
    for _ in range(25):
        o_s, p_s, o_aux_s = heads(torch.randn(6, hidden))
        o_ts, p_ts, o_aux_ts = aligner(torch.randn(6, 5))
        loss = (p_s - 3).pow(2).mean() + (p_ts + 2).pow(2).mean() + o_s.sum() + o_aux_ts.sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for weight in (heads.P_s.weight, aligner.P_ts.weight):
        assert weight.shape == (projection, hidden)
        assert _orthogonality_error(weight.detach()) < 1e-5
    plain = plain_state_dict(heads)
    assert torch.equal(plain["P_s.weight"], heads.P_s.weight.detach())
    assert not any("parametrizations" in key for key in plain)


def test_materialised_heads_compute_what_the_parametrised_ones_do():
    torch.manual_seed(1)
    heads = StudentHeads(8, 2, 12)
    plain = StudentHeads(8, 2, 12, orthogonal=False)
    plain.load_state_dict(plain_state_dict(heads))
    x = torch.randn(4, 8)
    for a, b in zip(heads(x), plain(x)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("shape, orthogonal_map", [("authors", "matrix_exp"), ("paper", "cayley")])
def test_a_fixed_aligners_twin_gives_its_outputs_with_p_ts_computed_once(shape, orthogonal_map):
    from armada.distill.heads import HeadShape, TSAligner, fixed_twin

    torch.manual_seed(0)
    aligner = TSAligner(12, 16, 3, 24, HeadShape(shape, dropout=0.1, orthogonal_map=orthogonal_map))
    torch.optim.SGD(aligner.parameters(), lr=0.5).zero_grad()
    sum(part.sum() for part in aligner(torch.randn(4, 12))).backward()
    torch.optim.SGD(aligner.parameters(), lr=0.5).step()       # away from its initial weights
    twin = fixed_twin(aligner)
    assert not any(torch.nn.utils.parametrize.is_parametrized(m) for m in twin.modules()) and not twin.training
    features = torch.randn(5, 12)
    with torch.no_grad():
        for theirs, ours in zip(aligner.eval()(features), twin(features)):
            torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
