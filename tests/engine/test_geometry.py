"""Tetrahedral grids and differentiable marching tetrahedra (the DMTet building blocks), on every
device torch sees (``device`` fixture)."""

import math

import torch
import trimesh

from engine.geometry import marching_tets, regular_tet_grid, sdf_sign_loss, unique_edges
from engine.geometry.lattice_surface import lattice_surface

LO, HI = torch.tensor([-1.0, -1.0, -1.0]), torch.tensor([1.0, 1.0, 1.0])


def test_grid_tets_fill_the_box_without_overlap(device):
    grid = regular_tet_grid(LO.to(device), HI.to(device), 4)
    corners = grid.vertices[grid.tets]  # [T, 4, 3]
    volume = torch.linalg.det(corners[:, 1:] - corners[:, :1]).abs().sum() / 6
    assert len(grid.tets) == 6 * 4**3 and math.isclose(float(volume), 8.0, rel_tol=1e-5)
    # every interior triangle is shared by exactly two tets: the split is conforming (no cracks)
    faces = torch.sort(grid.tets[:, [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]].reshape(-1, 3), dim=1).values
    _, counts = torch.unique(faces, dim=0, return_counts=True)
    assert counts.max() == 2 and int((counts == 1).sum()) == 6 * 4**2 * 2  # boundary: 2 triangles per face cell


def test_keep_mask_drops_cubes_and_unused_nodes(device):
    keep = torch.zeros(4, 4, 4, dtype=torch.bool, device=device)
    keep[1, 2, 3] = True
    grid = regular_tet_grid(LO.to(device), HI.to(device), 4, keep=keep)
    assert grid.tets.shape == (6, 4) and grid.vertices.shape == (8, 3)
    assert int((grid.node_index >= 0).sum()) == 8


def random_closed_sdf(resolution: int, seed: int, device: str = "cpu") -> tuple:
    grid = regular_tet_grid(LO.to(device), HI.to(device), resolution)
    generator = torch.Generator().manual_seed(seed)
    sdf = torch.randn(len(grid.vertices), generator=generator).to(device)
    sdf[(grid.vertices.abs() > 0.999).any(-1)] = 1.0  # outside at the border: the surface closes
    return grid, sdf


def test_random_sdfs_give_closed_consistently_oriented_meshes(device):
    for seed in range(3):
        grid, sdf = random_closed_sdf(10, seed, device)
        vertices, faces = marching_tets(grid.vertices, sdf, grid.tets)
        mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy(), process=False)
        assert len(faces) > 100
        assert mesh.is_watertight and mesh.is_winding_consistent
        assert mesh.volume > 0  # normals point outwards (SDF negative inside)


def test_sphere_volume_and_gradients(device):
    grid = regular_tet_grid(LO.to(device), HI.to(device), 24)
    sdf = (grid.vertices.norm(dim=-1) - 0.7).requires_grad_()
    vertices, faces = marching_tets(grid.vertices, sdf, grid.tets)
    mesh = trimesh.Trimesh(vertices.detach().cpu().numpy(), faces.cpu().numpy())
    assert math.isclose(mesh.volume, 4 / 3 * math.pi * 0.7**3, rel_tol=0.02)
    # lowering the SDF everywhere grows the sphere: d(mean radius)/d(sdf) is negative
    vertices.norm(dim=-1).mean().backward()
    assert sdf.grad.sum() < 0


def test_vertex_gradient_matches_finite_differences(device):
    grid, sdf = random_closed_sdf(6, 7, device)
    positions = grid.vertices.double().requires_grad_()
    values = sdf.double().requires_grad_()
    direction = torch.randn(3, dtype=torch.float64).to(device)

    def objective(p, s):
        vertices, _ = marching_tets(p, s, grid.tets)
        return (vertices @ direction).sin().sum()

    objective(positions, values).backward()
    eps = 1e-6
    for index in torch.randperm(len(values))[:40].tolist():
        bumped = values.detach().clone()
        bumped[index] += eps
        lowered = values.detach().clone()
        lowered[index] -= eps
        numeric = (objective(positions.detach(), bumped) - objective(positions.detach(), lowered)) / (2 * eps)
        assert math.isclose(float(values.grad[index]), float(numeric), rel_tol=1e-4, abs_tol=1e-6)
    bumped = positions.detach().clone()
    bumped[5, 0] += eps
    lowered = positions.detach().clone()
    lowered[5, 0] -= eps
    numeric = (objective(bumped, values.detach()) - objective(lowered, values.detach())) / (2 * eps)
    assert math.isclose(float(positions.grad[5, 0]), float(numeric), rel_tol=1e-4, abs_tol=1e-6)


def test_sign_regularizer_is_zero_when_signs_agree_and_positive_otherwise(device):
    grid = regular_tet_grid(LO.to(device), HI.to(device), 4)
    edges, tet_edges = unique_edges(grid.tets)
    assert tet_edges.shape == (len(grid.tets), 6) and len(edges) == len(torch.unique(edges, dim=0))
    assert float(sdf_sign_loss(torch.full((len(grid.vertices),), 0.3, device=device), edges)) == 0.0
    assert float(sdf_sign_loss(-torch.rand(len(grid.vertices), device=device) - 0.1, edges)) == 0.0
    mixed = grid.vertices.norm(dim=-1) - 0.8
    assert float(sdf_sign_loss(mixed, edges)) > 0.0


def test_lattice_surface_is_a_closed_outward_sphere_moved_by_the_offsets(device):
    grid = regular_tet_grid(LO.to(device), HI.to(device), 32)
    sdf = grid.vertices.norm(dim=-1) - 0.6
    vertices, faces = lattice_surface(grid, sdf, torch.zeros_like(grid.vertices))
    mesh = trimesh.Trimesh(vertices.cpu().numpy(), faces.cpu().numpy())
    assert mesh.is_watertight and math.isclose(mesh.volume, 4 / 3 * math.pi * 0.6**3, rel_tol=0.02)
    assert torch.allclose(vertices.norm(dim=-1), torch.tensor(0.6, device=device), atol=2e-3)
    # node offsets move each vertex by the offsets of its edge's nodes
    offsets = torch.zeros_like(grid.vertices)
    offsets[:, 0] = 0.01 * grid.vertices[:, 1]  # a shear: x moves with y
    moved, moved_faces = lattice_surface(grid, sdf, offsets)
    assert torch.equal(moved_faces, faces)
    assert torch.allclose(moved[:, 0] - vertices[:, 0], 0.01 * vertices[:, 1], atol=1e-5)
