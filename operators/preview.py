# SPDX-License-Identifier: GPL-3.0-or-later
"""The live preview: the worker's coarse mesh of the forming surface, shown as a temporary object.

One object per job, ``<name> (preview)``, in the result's collection; each new preview replaces its
mesh in place. It is removed when the job ends, however it ends (with the result's collection too
when the preview made it and nothing else went into it). It is not the user's data: it is made with
``bpy.data`` only, inside no operator's undo step (the reconstruct operator's one undo step holds
the result alone), it can be neither selected nor rendered, and any copy of it that an undo step of
the user's own caught while the job ran is deleted again after undo or on loading a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy

from ..bridge.objfile import read_preview
from . import result

# The custom property that marks a preview object.
MARK = "meshlift_preview"


@dataclass
class LivePreview:
    """The preview object of one job, found by name each time (an undo may have replaced it)."""

    scene_name: str
    collection_name: str
    name: str
    object_name: str | None = None
    made_collection: bool = False
    shown: int = 0

    def show(self, event: dict) -> None:
        """Show the mesh of a ``preview`` event, then delete its file. Raises ``ObjError``/``OSError``
        on a bad file (the caller ignores it: a preview is not worth failing a job for)."""
        path = Path(str(event["path"]))
        try:
            data = read_preview(path, str(event.get("format", "")))
        finally:
            path.unlink(missing_ok=True)
        scene = bpy.data.scenes.get(self.scene_name)
        if scene is None:
            return
        obj = bpy.data.objects.get(self.object_name) if self.object_name else None
        if obj is None or MARK not in obj:
            obj = self._new_object(scene)
        mesh = obj.data
        mesh.clear_geometry()
        result.fill_mesh(mesh, data, validate=False)  # read_preview checked every index
        self.shown += 1

    def _new_object(self, scene: bpy.types.Scene) -> bpy.types.Object:
        existed = any(c.name == (self.collection_name.strip() or "Meshlift")
                      for c in scene.collection.children_recursive)
        collection = result.output_collection(scene, self.collection_name)
        self.made_collection = self.made_collection or not existed
        label = f"{self.name} (preview)"
        obj = bpy.data.objects.new(label, bpy.data.meshes.new(label))
        obj[MARK] = True
        obj.hide_select = True
        obj.hide_render = True
        obj.show_wire = True
        collection.objects.link(obj)
        self.object_name = obj.name
        return obj

    def remove(self) -> None:
        """Delete the preview object and its mesh (and the collection it made, when empty)."""
        obj = bpy.data.objects.get(self.object_name) if self.object_name else None
        if obj is not None and MARK in obj:
            delete(obj)
        self.object_name = None
        scene = bpy.data.scenes.get(self.scene_name)
        if self.made_collection and scene is not None:
            name = self.collection_name.strip() or "Meshlift"
            collection = next((c for c in scene.collection.children_recursive if c.name == name), None)
            if collection is not None and not collection.all_objects and not collection.children:
                bpy.data.collections.remove(collection)
        self.made_collection = False


def delete(obj: bpy.types.Object) -> None:
    mesh = obj.data
    bpy.data.objects.remove(obj)
    if mesh is not None and mesh.users == 0:
        bpy.data.meshes.remove(mesh)


def remove_strays(keep: str | None = None) -> int:
    """Delete every preview object but ``keep`` (copies an undo step or a saved file brought back);
    returns how many."""
    strays = [obj for obj in bpy.data.objects if MARK in obj and obj.name != keep]
    for obj in strays:
        delete(obj)
    return len(strays)
