"""Instances: the data model, file I/O, validation, generators and trace import."""
from __future__ import annotations

from .io import read_instance, read_placement, write_instance, write_placement
from .model import Instance, Placement
from .validate import instance_from_dict, placement_from_dict

__all__ = ["Instance", "Placement", "read_instance", "write_instance", "read_placement",
           "write_placement", "instance_from_dict", "placement_from_dict"]
