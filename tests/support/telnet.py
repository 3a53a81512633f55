"""A telnet client for tests: raw bytes over a real TCP socket.

It speaks its own small telnet (independent of ``vibemuse.telnet``): it
strips and records the server's commands, answers negotiations as told
(``ttype`` names to give, a ``naws`` window size, whether it answers timing
marks, whether it wants MSSP, MCCP2, GMCP), refuses every other option, and keeps the text it read, decoded.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from typing import Any

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
ECHO, TIMING_MARK, TTYPE, NAWS, MSSP, MCCP2, GMCP = 1, 6, 24, 31, 70, 86, 201


class TelnetClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 ttype: list[str] | None = None, naws: tuple[int, int] | None = None, timing_mark: bool = False,
                 mssp: bool = False, mccp: bool = False, gmcp: bool = False):
        self.reader, self.writer = reader, writer
        self.ttype = ttype
        self.naws = naws
        self.timing_mark = timing_mark
        self.mssp = mssp
        self.mccp = mccp
        self.gmcp = gmcp
        self.compressed_bytes = 0  # bytes read while MCCP2 was on
        self._inflater: Any = None
        self.negotiations: list[tuple[int, int]] = []  # (verb, option) the server sent
        self.subnegotiations: list[tuple[int, bytes]] = []
        self.raw = bytearray()  # data bytes, commands stripped
        self.cursor = 0  # where ``expect`` looks from
        self.eof = False
        self._ttype_answers = 0
        self._changed = asyncio.Event()
        self._pending = bytearray()
        self._task = asyncio.ensure_future(self._read_forever())

    @classmethod
    async def open(cls, port: int, **options: Any) -> "TelnetClient":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, **options)

    # -- reading ---------------------------------------------------------------

    async def _read_forever(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                self._pending += self._inflate(data)
                self._parse()
                self._changed.set()
        except (ConnectionError, OSError):
            pass
        self.eof = True
        self._changed.set()

    def _parse(self) -> None:
        buffer = self._pending
        i = 0
        while i < len(buffer):
            byte = buffer[i]
            if byte != IAC:
                self.raw.append(byte)
                i += 1
                continue
            if i + 1 >= len(buffer):
                break
            command = buffer[i + 1]
            if command == IAC:
                self.raw.append(IAC)
                i += 2
            elif command in (WILL, WONT, DO, DONT):
                if i + 2 >= len(buffer):
                    break
                self._negotiated(command, buffer[i + 2])
                i += 3
            elif command == SB:
                end = buffer.find(bytes((IAC, SE)), i + 2)
                if end < 0:
                    break
                option, payload = buffer[i + 2], bytes(buffer[i + 3:end])
                self._subnegotiated(option, payload)
                i = end + 2
                if option == MCCP2 and not payload:
                    # Everything after IAC SB MCCP2 IAC SE is a deflate stream.
                    rest = bytes(buffer[i:])
                    del buffer[i:]
                    self._inflater = zlib.decompressobj()
                    buffer += self._inflate(rest)
            else:
                i += 2
        del buffer[:i]

    def _inflate(self, data: bytes) -> bytes:
        if self._inflater is None:
            return data
        self.compressed_bytes += len(data)
        plain = self._inflater.decompress(data)
        if self._inflater.eof:  # the server ended compression: the rest is plain
            rest, self._inflater = self._inflater.unused_data, None
            plain += rest
        return plain

    def _negotiated(self, verb: int, option: int) -> None:
        self.negotiations.append((verb, option))
        if option == TIMING_MARK and verb == DO:
            if self.timing_mark:
                self.send_raw(bytes((IAC, WILL, TIMING_MARK)))
            return
        if verb == DO:
            if option == TTYPE and self.ttype:
                self.send_raw(bytes((IAC, WILL, TTYPE)))
            elif option == NAWS and self.naws:
                width, height = self.naws
                self.send_raw(bytes((IAC, WILL, NAWS, IAC, SB, NAWS, width >> 8, width & 255, height >> 8,
                                     height & 255, IAC, SE)))
            elif option != ECHO:
                self.send_raw(bytes((IAC, WONT, option)))
        elif verb == WILL and (option == ECHO or option == MSSP and self.mssp or option == MCCP2 and self.mccp
                               or option == GMCP and self.gmcp):
            self.send_raw(bytes((IAC, DO, option)))
        elif verb == WILL:
            self.send_raw(bytes((IAC, DONT, option)))

    def _subnegotiated(self, option: int, payload: bytes) -> None:
        self.subnegotiations.append((option, payload))
        if option == TTYPE and payload == b"\x01" and self.ttype:
            name = self.ttype[min(self._ttype_answers, len(self.ttype) - 1)]
            self._ttype_answers += 1
            self.send_raw(bytes((IAC, SB, TTYPE, 0)) + name.encode("ascii") + bytes((IAC, SE)))

    def gmcp_messages(self, package: str) -> list[Any]:
        """The values of the GMCP messages of ``package`` read so far."""
        found = []
        for option, payload in self.subnegotiations:
            name, _, body = payload.decode("utf-8").partition(" ")
            if option == GMCP and name == package:
                found.append(json.loads(body))
        return found

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    async def expect(self, wanted: str, timeout: float = 10.0) -> str:
        """Wait until ``wanted`` appears after the cursor; return the text up to its end and move past it."""
        needle = wanted.encode("utf-8")

        async def found() -> str:
            while True:
                at = self.raw.find(needle, self.cursor)
                if at >= 0:
                    seen = bytes(self.raw[self.cursor:at + len(needle)])
                    self.cursor = at + len(needle)
                    return seen.decode("utf-8", "replace")
                if self.eof:
                    raise AssertionError(f"connection closed before {wanted!r}; got {self.text[self.cursor:]!r}")
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"no {wanted!r} in {self.text[self.cursor:]!r}") from None

    async def closed(self, timeout: float = 10.0) -> str:
        """Wait for the server to close; the text read after the cursor."""
        await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return bytes(self.raw[self.cursor:]).decode("utf-8", "replace")

    async def wait_for(self, check: Any, timeout: float = 10.0) -> None:
        async def until() -> None:
            while not check():
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(until(), timeout)

    # -- writing ---------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        self.writer.write(data)

    def send_line(self, line: str | bytes) -> None:
        self.send_raw((line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n")

    async def login(self, command: str, name: str) -> None:
        """``create`` or ``connect`` with the test password; waits for the room."""
        self.send_line(f"{command} {name} {PASSWORD}")
        await self.expect("Players:")

    def close(self) -> None:
        self.writer.close()
        self._task.cancel()


PASSWORD = "correct horse battery"
