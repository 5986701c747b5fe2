"""The hash-grid albedo field: continuous, and able to learn a colour pattern quickly on the CPU."""

import torch

from engine.fields import AlbedoField, HashGrid


def test_encoding_is_continuous_across_cells():
    grid = HashGrid(levels=4, finest=64)
    torch.nn.init.uniform_(grid.tables, -1.0, 1.0)
    a = torch.tensor([[0.1234, -0.5, 0.3]])
    assert (grid(a) - grid(a + 1e-5)).abs().max() < 1e-2
    assert grid(a).shape == (1, grid.out_dim)


def test_albedo_field_fits_a_pattern():
    torch.manual_seed(0)
    field = AlbedoField(levels=8, finest=128)
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2, eps=1e-15)
    points = torch.rand(8192, 3) * 2 - 1
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
