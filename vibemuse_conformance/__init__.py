"""vibemuse_conformance: the VibeMUSE conformance suite, run against any server from the outside.

It tests a running server through spec/ alone: it speaks to it only through
the SDK ``vibemuse_client`` (and Tornado for what the SDK will not send), and
imports nothing of the server (``vibemuse``); a test fails if it does.
``vibemuse-conformance <base-url>`` runs it (``cli.py``); the sections live in
``sections/``, one module per part of the spec. See spec/README.md.
"""
