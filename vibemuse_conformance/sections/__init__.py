"""The sections of the suite, one module per part of the spec; importing this registers them all,
in the order they run (the order of the imports below)."""

from vibemuse_conformance.sections import session  # isort: skip
from vibemuse_conformance.sections import timeouts  # isort: skip
from vibemuse_conformance.sections import rooms  # isort: skip
from vibemuse_conformance.sections import pages  # isort: skip
from vibemuse_conformance.sections import channels  # isort: skip
from vibemuse_conformance.sections import streams  # isort: skip
from vibemuse_conformance.sections import limits  # isort: skip
from vibemuse_conformance.sections import federation  # isort: skip

MODULES = (session, timeouts, rooms, pages, channels, streams, limits, federation)
