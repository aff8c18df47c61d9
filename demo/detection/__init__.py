"""The detection demo's parts: multi-object digit scenes made on the spot
(:mod:`demo.detection.data`), a trainable CPU sliding-window detector (:mod:`demo.detection.detector`)
and its Dataloop model adapter (:mod:`demo.detection.adapter`)."""

from demo.detection.data import DetectionScenes, make_scenes

__all__ = ["DetectionScenes", "make_scenes"]
