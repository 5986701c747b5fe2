"""The options of the ``neus`` method and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from ...free_space import FreeSpaceOptions
from ...options import check_presets, option
from ...shading.options import PBROptions


@dataclass(frozen=True)
class NeuSOptions(FreeSpaceOptions, PBROptions):
    """Options of the ``neus`` method; the defaults are the ``balanced`` preset."""

    # Optimization length and batch.
    iterations: int = option(5000, "Optimization steps of the SDF and colour fields.", unit="steps", min=1)
    rays: int = option(4096, "Rays (pixels, drawn at random over all views) per step; more rays average out "
                       "pixel noise, fewer leave the surface rougher than its start.", unit="rays", min=16)
    samples: int = option(16, "Network samples per ray, spread over the band around the cached surface.",
                          unit="samples", min=2, max=256)
    # Field.
    levels: int = option(8, "Hash-grid encoding levels of the SDF and albedo fields.", unit="levels", min=1, max=16)
    finest: int = option(256, "Resolution of the finest hash-grid level over the unit volume.", unit="cells",
                         min=16, max=8192)
    log2_table: int = option(16, "log2 of the SDF hash table's entries per level.", min=10, max=24)
    start_levels: int = option(4, "Encoding levels active at the start (coarse to fine).", unit="levels", min=1,
                               max=16)
    coarse_to_fine: float = option(0.4, "Share of the steps over which the finer levels are switched on.",
                                   min=0.0, max=1.0)
    # Learning rates and their schedule.
    lr: float = option(5e-3, "Adam learning rate of the hash-grid tables.", min=0.0)
    lr_mlp: float = option(1e-3, "Adam learning rate of the MLPs (a full-size first step shifts the SDF).", min=0.0)
    lr_inv_s: float = option(1e-2, "Adam learning rate of log(inv_s), the sharpness of the surface.", min=0.0)
    lr_warmup: int = option(50, "Steps over which the learning rates ramp up from zero (Adam's first steps are "
                            "full-size whatever the gradient).", unit="steps", min=1)
    lr_final_factor: float = option(0.1, "Learning rates at the last step, as a share of the first ones "
                                    "(exponential decay).", min=0.0, max=1.0)
    # Sharpness and sampling.
    inv_s_init: float = option(100.0, "Initial inv_s (1 / the logistic density's width) when starting from a hull.",
                               unit="1/unit-volume units", min=1.0)
    inv_s_init_mask_free: float = option(30.0, "Initial inv_s when starting blind from a sphere (the surface has "
                                         "far to go).", unit="1/unit-volume units", min=1.0)
    anneal: float = option(0.1, "Share of the steps over which NeuS's cosine annealing goes from 0 to 1.",
                           min=0.0, max=1.0)
    band: float = option(1.5, "Half-width of the sample band around the cached surface, in cache cells.",
                         unit="cells", min=0.1)
    band_sharp: float = option(4.0, "The band's half-width is at least this many 1/inv_s (the density's width).",
                               min=0.0)
    grid: int = option(64, "Cells (longest side) of the cached SDF lattice that rays march.", unit="cells", min=8,
                       max=512)
    update_every: int = option(50, "Steps between refreshes of the cached SDF lattice from the network.",
                               unit="steps", min=1)
    # Loss weights.
    eikonal_weight: float = option(0.1, "Weight of the eikonal loss (|grad SDF| = 1) on the samples and on as many "
                                   "uniform points.", min=0.0)
    # Spot (balanced): free_space_weight 1 everywhere gave Chamfer-L1 0.0032, 0 gave 0.0029; the bowl needs it.
    free_space_weight: float = option(0.0, "Weight of the loss that keeps the SDF positive where the lines of sight "
                                      "show empty space (0: off; see `hollow_free_space_weight`).", min=0.0)
    hollow_free_space_weight: float = option(1.0, "When the carved start opened a hollow (the carve emptied at least "
                                             "10% of the hull), `free_space_weight` is at least this: the lines of "
                                             "sight keep the hollow open. Elsewhere the few that graze the surface "
                                             "only dent it.", min=0.0)
    free_space_points: int = option(4096, "Points per step at which the free-space loss is evaluated (drawn on "
                                    "the lines of sight to the triangulated points).", unit="points", min=1)
    sparse_depth_rays: int = option(512, "Rays per step along the lines of sight of triangulated points, for the "
                                    "sparse depth loss.", unit="rays", min=1)
    mask_weight: float = option(0.1, "Weight of the mask BCE on the rendered opacity (with masks only).", min=0.0)
    albedo_weight: float = option(1.0, "Weight of the L1 between the rendered albedo alone and the images (the "
                                  "albedo must explain them by itself, for the texture).", min=0.0)
    depth_weight: float = option(1.0, "Weight of the L1 between the rendered depth and the views' depth maps, in "
                                 "unit-volume units (only when the dataset has depth maps; 0: off).", min=0.0)
    normal_weight: float = option(0.1, "Weight of 1 - cos between the rendered normals and the views' normal maps "
                                  "(only when the dataset has normal maps; 0: off).", min=0.0)
    appearance_weight: float = option(0.01, "Without masks: weight of the penalty (mean square of the log gains and "
                                      "offsets) that keeps each photo's own affine colour near the average.", min=0.0)
    geometry_warmup: float = option(0.15, "Without masks: share of the steps in which only the colours learn "
                                    "(the surface and inv_s wait).", min=0.0, max=1.0)
    # Photos as they are taken (without masks).
    view_appearance: bool = option(True, "Without masks: learn an affine colour (gain and offset per channel) of each "
                                   "training image, for photos whose exposure or white balance differ (mask-free "
                                   "Chamfer-L1: bunny-tabletop-studio 0.0107 -> 0.0099, spot-tabletop 0.0072 -> "
                                   "0.0071).")
    # material=pbr.
    radiance_guide: bool = option(True, "pbr: keep baked's radiance head (albedo plus view-dependent residual) and "
                                  "its colour and albedo terms to shape the surface, the shaded material training "
                                  "only the material and the light (the geometry then is baked's); off: the shaded "
                                  "colour alone shapes it.")
    # Start.
    init_iterations: int = option(150, "Steps fitting the SDF to its start (hull or sphere) before rendering.",
                                  unit="steps", min=0)
    init_resolution: int = option(192, "Cells (longest side) of the hull's signed distance the start is fitted to.",
                                  unit="cells", min=16, max=1024)
    init_lr: float = option(1e-2, "Adam learning rate of the fit to the start.", min=0.0)
    init_points: int = option(16384, "Points per step of the fit to the start (half near the surface).",
                              unit="points", min=64)
    sphere_radius: float = option(0.6, "Radius of the blind start's sphere around the region's centre.",
                                  unit="unit-volume units", min=0.05, max=1.0)
    # Extraction.
    mesh_resolution: int = option(256, "Marching-cubes cells (longest side) of the extracted surface.",
                                  unit="cells", min=16, max=2048)


PRESETS = check_presets({
    "fast": NeuSOptions(iterations=600, rays=2048, mesh_resolution=192),
    "balanced": NeuSOptions(),
    "quality": NeuSOptions(grid=96, rays=8192, mesh_resolution=384, faces=40_000, texture_size=2048),
}, "neus")
