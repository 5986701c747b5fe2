"""Relightable materials: a PBR material and the light that lit the photos, learned with the surface.

| module | what it is |
|---|---|
| ``colour`` | the sRGB curve both ways, nvdiffrec's tone map, luminance |
| ``brdf`` | the metallic-roughness BRDF and its specular level (GGX, Smith, Schlick; Lambert layered as Principled's) |
| ``sg`` | spherical Gaussians: evaluation, integrals, products; the Fibonacci sphere |
| ``light`` | :class:`SceneLight`: sun + ambient + lobes, its priors and its description |
| ``surface`` | :func:`shade`: radiance of surface points under the light |
| ``visibility`` | the sun's visibility and ambient occlusion by casting rays at a mesh |
| ``material`` | :class:`PBRMaterial`: the material field and the light, learned together |
| ``options`` | :class:`PBROptions`: ``material=baked|pbr`` and the fit's options |
"""
