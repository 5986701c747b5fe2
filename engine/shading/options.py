"""The options every method that can learn a PBR material has (DMTet, NeuS)."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import MeshOptions, option

MATERIALS = ("baked", "pbr")
BASE_COLOUR_SOURCES = ("photos", "field")


@dataclass(frozen=True)
class PBROptions(MeshOptions):
    """The material switch and, for ``material=pbr``, the light and the priors of the material fit
    (the material field learns at the method's learning rate of its colour field)."""

    material: str = option("baked", "baked: the texture shows the photos as lit (today's); pbr: learn base colour, "
                           "roughness, metallic and the light with the surface (a relightable asset).",
                           choices=MATERIALS)
    base_colour_from: str = option("field", "pbr: where the base-colour texture comes from: photos (the training "
                                   "images divided by the learned light's shading, as sharp as the photos) or field "
                                   "(the learned base-colour field, smoother).", choices=BASE_COLOUR_SOURCES)
    light_lobes: int = option(12, "pbr: spherical Gaussian lobes of the learned environment (besides a sun and an "
                              "ambient term).", unit="lobes", min=0, max=64)
    # 4 rays a step roughened NeuS's sky-lit (shadow) side, bunny-studio Chamfer-L1 0.00423 against 0.00376 with
    # none; DMTet 0.00409 -> 0.00391 (BENCHMARKS, Materials, session 6). The exported occlusion map is traced after.
    ao_rays: int = option(0, "pbr: rays per surface point and step estimating its ambient occlusion during the fit "
                          "(0: none; the occlusion map of the result is traced either way).", unit="rays", min=0,
                          max=64)
    shadow_offset: float = option(0.01, "pbr: shadow and occlusion rays start this far off the surface (no "
                                  "self-shadowing).", unit="unit-volume units", min=0.0, max=0.2)
    shading_moves_surface: bool = option(False, "pbr: let the shading's gradient reach the surface through its "
                                         "normals (highlights and shadow edges then pull on the geometry); off: the "
                                         "shading sees the normals as they are and the surface follows the "
                                         "silhouettes, the colours' positions and the geometry terms, as with baked.")
    lr_light: float = option(0.01, "pbr: Adam learning rate of the light (log intensities, directions) and of "
                           "the specular level's logit.", min=0.0)
    albedo_smooth_weight: float = option(0.03, "Weight of the albedo (pbr: base colour) smoothness, L1 to the "
                                         "albedo a little away (NeuS: pbr only).", min=0.0)
    albedo_smooth_radius: float = option(0.01, "Standard deviation of the jitter of the albedo and roughness "
                                         "smoothness.", unit="unit-volume units", min=0.0)
    roughness_smooth_weight: float = option(0.03, "pbr: weight of the roughness smoothness (L1 to the roughness "
                                            "a little away).", min=0.0)
    metallic_weight: float = option(0.01, "pbr: weight of the dielectric prior (the mean metalness): most "
                                    "objects are not metal.", min=0.0)
    white_balance_weight: float = option(0.05, "pbr: weight of the white-balance prior (the light's colour is "
                                         "grey; colour belongs to the albedo).", min=0.0)
    light_scale_weight: float = option(0.01, "pbr: weight of the exposure prior (white facing the brightest light "
                                       "renders at 1), which settles the albedo/light scale.", min=0.0)


def pbr_weights(opts: PBROptions) -> dict[str, float]:
    """The weights of the named terms :meth:`engine.shading.material.PBRMaterial.regularizers` returns."""
    return {"albedo_smooth": opts.albedo_smooth_weight, "roughness_smooth": opts.roughness_smooth_weight,
            "metallic": opts.metallic_weight, "white_balance": opts.white_balance_weight,
            "light_scale": opts.light_scale_weight}
