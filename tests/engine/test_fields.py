"""The hash-grid fields: a continuous encoding, an albedo that learns a pattern quickly, and an SDF
gradient in closed form that matches autograd; on every device torch sees (``device`` fixture)."""

import torch

from engine.fields import AlbedoField, HashGrid
from engine.fields.sdf import SDFField


def test_encoding_is_continuous_across_cells(device):
    grid = HashGrid(levels=4, finest=64).to(device)
    torch.nn.init.uniform_(grid.tables, -1.0, 1.0)
    a = torch.tensor([[0.1234, -0.5, 0.3]], device=device)
    assert (grid(a) - grid(a + 1e-5)).abs().max() < 1e-2
    assert grid(a).shape == (1, grid.out_dim)


def test_albedo_field_fits_a_pattern(device):
    torch.manual_seed(0)
    field = AlbedoField(levels=8, finest=128).to(device)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2, eps=1e-15)
    points = (torch.rand(8192, 3) * 2 - 1).to(device)
    target = torch.stack([(points[:, 0] * 4).sin(), (points[:, 1] * 3).cos(), points[:, 2]], -1) * 0.4 + 0.5
    first = None
    for _ in range(150):
        loss = (field(points) - target).abs().mean()
        first = first if first is not None else float(loss.detach())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss.detach()) < 0.25 * first
    with torch.no_grad():
        assert float(field(points).min()) >= 0.0 and float(field(points).max()) <= 1.0


def test_sdf_gradient_in_closed_form_matches_autograd_and_trains_the_same(device):
    """``SDFField.with_gradient`` (the encoding's Jacobian in closed form) against autograd's double
    backward through the interpolation: same gradient, same parameter gradients of an eikonal loss."""
    torch.manual_seed(0)
    field = SDFField(levels=6, finest=128, table_size=2**14).to(device)
    torch.nn.init.uniform_(field.encoding.tables, -0.1, 0.1)
    field.set_active_levels(5)
    points = (torch.rand(3000, 3) * 2.2 - 1.1).to(device)  # some outside the unit volume, where the encoding is clamped

    def autograd_gradient(p: torch.Tensor):
        p = p.detach().requires_grad_(True)
        sdf, features = field(p)
        (gradient,) = torch.autograd.grad(sdf.sum(), p, create_graph=True)
        return sdf, features, gradient

    results = []
    for compute in (autograd_gradient, field.with_gradient):
        sdf, features, gradient = compute(points)
        loss = sdf.abs().mean() + ((gradient.norm(dim=-1) - 1.0) ** 2).mean() + 1e-3 * features.sum()
        field.zero_grad()
        loss.backward()
        results.append([gradient.detach(), *(p.grad.clone() for p in field.parameters())])
    for expected, got in zip(*results, strict=True):
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-6)
    assert float(results[0][0].abs().mean()) > 0.01  # not trivially zero
