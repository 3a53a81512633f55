"""VibeMUSE: the real-time communication server of a text game world.

The package is layered (see ARCHITECTURE in the README): ``protocol`` is pure,
``storage`` and ``realtime`` sit above it, ``services`` hold the rules,
``handlers`` are the Tornado edge and ``app`` wires them together.
"""

__version__ = "0.1.0"
SOFTWARE_NAME = "VibeMUSE"
