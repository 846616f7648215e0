"""Deterministic FROM-scratch images: layer tar, config, manifest, writers.

Knows nothing of registries or pipelines: input is a directory and an
:class:`~scratchd.models.ImageSpec`, output an :class:`~scratchd.image.types.Image`
whose blobs live on disk.
"""
