"""The sections of the suite, one module per part of the spec; importing this registers them all,
in the order they run."""

from vibemuse_conformance.sections import session

MODULES = (session,)
