"""The telnet port: MUD clients (TinyFugue, MUSHclient, Mudlet) as players.

``codec``, ``options``, ``ansi`` and ``screen`` are pure (bytes and frames in,
events and lines out); ``connection`` and ``listener`` are the transport that
runs them on Tornado's IOStream, in the server's event loop.
"""
