"""vibemuse_client: a Python asyncio client for the VibeMUSE protocol v1, written from spec/ alone.

It imports nothing of the server (``vibemuse``); its only source is the
published spec (schemas, ``errors.json``, ``openapi.json``). See README.md.
"""

from vibemuse_client.client import Backoff, Client
from vibemuse_client.connection import SUBPROTOCOL, Connection
from vibemuse_client.errors import (ConnectionClosed, SchemaViolation, SessionEnded, SignatureError,
                                    VibeMuseError)
from vibemuse_client.frames import Ack, Event, Frame, Limits, ResumeGap, Resumed, Session, User, Versions, Welcome
from vibemuse_client.history import History, HistoryPage, HistoryReader
from vibemuse_client.http import HttpApi
from vibemuse_client.keys import KeyStore
from vibemuse_client.signing import Verification
from vibemuse_client.spec import Spec, load_spec

__all__ = [
    "Ack", "Backoff", "Client", "Connection", "ConnectionClosed", "Event", "Frame", "History", "HistoryPage",
    "HistoryReader", "HttpApi", "KeyStore", "Limits", "ResumeGap", "Resumed", "SUBPROTOCOL", "SchemaViolation",
    "Session", "SessionEnded", "SignatureError", "Spec", "User", "Verification", "Versions", "VibeMuseError",
    "Welcome", "load_spec",
]
