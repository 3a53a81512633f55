"""The telnet port over real sockets: a raw-bytes telnet client against a live server,
with WebSocket players beside it (both storage engines)."""

from __future__ import annotations

import asyncio
import warnings

import pytest

from tests.support.client import acked
from tests.support.telnet import (
    DO, DONT, ECHO, IAC, MCCP2, MSSP, NAWS, PASSWORD, SB, TIMING_MARK, TTYPE, WILL, WONT, TelnetClient,
)
from vibemuse.realtime.heartbeat import Heartbeat

ESC = "\x1b"


@pytest.fixture
def telnet_port(server, http_server):
    return server.listen_telnet(0, "127.0.0.1")


@pytest.fixture
def clients():
    opened: list[TelnetClient] = []
    yield opened
    for client in opened:
        client.close()


@pytest.fixture
def connect(telnet_port, clients):
    async def open_client(**options) -> TelnetClient:
        client = await TelnetClient.open(telnet_port, **options)
        clients.append(client)
        await client.expect("QUIT")
        return client

    return open_client


def telnet_connections(server):
    return list(server.telnet.open)


async def channel(world, owner, name="Public"):
    status, created = await world.api.call("POST", "/api/communication/channels", {"name": name},
                                           token=owner.token, schema="channel-joined")
    assert status == 201, created
    return created["channel"]["id"]


async def rendered(socket, frame_type="message", sender="@alice:test.localhost"):
    """The next line by ``sender`` that the socket got (its own lines are skipped)."""
    while True:
        event = (await socket.receive_type(frame_type))["data"]["event"]
        if event["sender"] == sender:
            return event["content"]["rendered"]


@pytest.mark.gen_test(timeout=30)
async def test_login_screen_create_and_connect(connect, server):
    client = await connect()
    assert "connect <name> <password>" in client.text and "create <name> <password>" in client.text
    assert (DO, TTYPE) in client.negotiations and (DO, NAWS) in client.negotiations
    client.send_line("look")  # not a login-screen command: the choices again
    await client.expect("create <name> <password>")
    await client.login("create", "Alice")
    assert "Town Square" in client.text
    assert server.context.registry.is_online("@alice:test.localhost")
    client.send_line("QUIT")
    assert "Goodbye." in await client.closed()
    for _ in range(100):
        if not server.context.registry.is_online("@alice:test.localhost"):
            break
        await asyncio.sleep(0.02)
    assert not server.context.registry.is_online("@alice:test.localhost")
    again = await connect()
    await again.login("connect", "alice")
    assert "Alice" in again.text.split("Players:")[1]


@pytest.mark.gen_test(timeout=30)
async def test_wrong_password_stays_on_the_login_screen(connect, world):
    await world.offline_player("Bob")
    client = await connect()
    client.send_line("connect Bob not the password")
    await client.expect("Wrong username or password.")
    client.send_line("connect Nobody whatever")
    await client.expect("Wrong username or password.")
    client.send_line("create Bob some other password")
    await client.expect("is taken")
    client.send_line("create Bob")
    await client.expect("Usage: create <name> <password>")
    await client.login("connect", "Bob")


@pytest.mark.gen_test(timeout=30)
async def test_password_on_its_own_line_is_not_echoed(connect, world):
    await world.offline_player("Bob")
    client = await connect()
    client.send_line("connect Bob")
    await client.expect("Password:")
    assert (WILL, ECHO) in client.negotiations  # the client stops echoing
    client.send_line(PASSWORD)
    await client.expect("Players:")
    assert client.negotiations.index((WONT, ECHO)) > client.negotiations.index((WILL, ECHO))
    assert PASSWORD not in client.text


@pytest.mark.gen_test(timeout=30)
async def test_say_pose_and_page_between_telnet_and_websocket(connect, world):
    bob = await world.player("Bob")
    alice = await connect()
    await alice.login("create", "Alice")
    assert "Bob" in alice.text.split("Players:")[1]
    alice.send_line('"Hello, Bob!')
    await alice.expect('You say, "Hello, Bob!"')
    assert await rendered(bob.ws) == 'Alice says, "Hello, Bob!"'
    alice.send_line(":waves.")
    assert await rendered(bob.ws) == "Alice waves."
    await acked(bob.ws, "say", {"text": "Hi, Alice."})
    await alice.expect('Bob says, "Hi, Alice."')
    await acked(bob.ws, "pose", {"text": "bows."})
    await alice.expect("Bob bows.")
    alice.send_line("page bob=Psst.")
    await alice.expect("You paged Bob with 'Psst.'.")
    assert await rendered(bob.ws) == "Alice pages: Psst."
    await acked(bob.ws, "page", {"to": ["alice"], "text": "waves back.", "style": "pose"})
    await alice.expect("From afar, Bob waves back.")
    alice.send_line("frobnicate")
    await alice.expect('Huh?  (Type "help" for help.)')
    alice.send_line('"two%rlines')
    await alice.expect('You say, "two\r\nlines"')
    alice.send_line("look")
    await alice.expect("Town Square\r\nThe heart of town, where every newcomer arrives.\r\nPlayers:\r\n")
    await alice.expect("Bob\r\n")
    carol = await world.player("Carol")
    await alice.expect("Carol has connected.")
    await world.wait_offline(carol)
    await alice.expect("Carol has disconnected.")


@pytest.mark.gen_test(timeout=30)
async def test_channels_both_ways(connect, world):
    bob = await world.player("Bob")
    await channel(world, bob)
    alice = await connect()
    await alice.login("create", "Alice")
    alice.send_line("addcom pub=Public")
    await alice.expect("<Public> Alice has joined this channel.")
    assert await rendered(bob.ws, "channel_notice") == "<Public> Alice has joined this channel."
    alice.send_line("+pub Evening, all.")
    await alice.expect('<Public> Alice says, "Evening, all."')
    assert await rendered(bob.ws, "channel_message") == '<Public> Alice says, "Evening, all."'
    await acked(bob.ws, "channel", {"channelId": "#public:test.localhost", "text": "nods.", "style": "pose"})
    await alice.expect("<Public> Bob nods.")
    alice.send_line("comlist")
    await alice.expect("pub")
    alice.send_line("@channel/who Public")
    await alice.expect("Connected on public: ")


@pytest.mark.gen_test(timeout=30)
async def test_who_lists_telnet_and_websocket_players(connect, world):
    bob = await world.player("Bob")
    watcher = await connect()
    watcher.send_line("WHO")  # before login too
    await watcher.expect("1 player logged in.")
    alice = await connect()
    await alice.login("create", "Alice")
    alice.send_line("WHO")
    table = await alice.expect("2 players logged in.")
    assert "Bob" in table and "Alice" in table
    message_id = await bob.ws.send_frame("who")
    who = await bob.ws.receive_type("who")
    assert who["data"]["inReplyTo"] == message_id
    assert {user["username"] for user in who["data"]["users"]} == {"Alice", "Bob"}


@pytest.mark.gen_test(timeout=30)
async def test_offline_pages_are_shown_on_connect(connect, world):
    bob = await world.player("Bob")
    await world.offline_player("Alice")
    ack = await acked(bob.ws, "page", {"to": ["alice"], "text": "Call me when you are in."})
    assert ack["data"]["offline"] == ["@alice:test.localhost"]
    alice = await connect()
    await alice.login("connect", "Alice")
    await alice.expect("Bob pages: Call me when you are in.")
    receipt = await bob.ws.receive_type("page_receipt")
    assert receipt["data"]["event"]["content"]["recipient"] == "@alice:test.localhost"


@pytest.mark.gen_test(timeout=30)
async def test_ansi_colour_when_the_client_says_it_draws_it(connect, world, server):
    bob = await world.player("Bob")
    alice = await connect(ttype=["MUDLET", "ANSI-256COLOR", "MTTS 137"], naws=(120, 40))
    await alice.wait_for(lambda: len([s for s in alice.subnegotiations if s[0] == TTYPE]) == 3)
    await alice.login("create", "Alice")
    terminal = telnet_connections(server)[0].options.terminal
    assert terminal.names == ["MUDLET", "ANSI-256COLOR", "MTTS 137"]
    assert (terminal.width, terminal.height, terminal.colours) == (120, 40, 256)
    await acked(bob.ws, "say", {"text": "a %xrred%xn word and %x<#ff8700>orange"})
    line = await alice.expect("orange")
    assert f"{ESC}[0;31mred{ESC}[0m" in line and f"{ESC}[0;38;5;208morange" in line
    alice.send_line("@ansi off")
    await alice.expect("Colour is off.")
    await acked(bob.ws, "say", {"text": "%xhbold%xn again"})
    line = await alice.expect("bold again")
    assert ESC not in line


@pytest.mark.gen_test(timeout=30)
async def test_plain_text_for_a_client_that_negotiates_nothing(connect, world):
    bob = await world.player("Bob")
    alice = await connect()
    await alice.login("create", "Alice")
    await acked(bob.ws, "say", {"text": "%xgquite%xn green"})
    assert ESC not in await alice.expect("quite green")
    alice.send_line("@ansi on")
    await alice.expect("Colour is on.")
    await acked(bob.ws, "say", {"text": "%xgnow%xn green"})
    assert f"{ESC}[0;32mnow{ESC}[0m" in await alice.expect("green")


@pytest.mark.gen_test(timeout=30)
async def test_mssp_tells_crawlers_the_name_and_players(connect, world):
    await world.player("Bob")
    crawler = await connect(mssp=True)
    await crawler.wait_for(lambda: any(option == MSSP for option, _ in crawler.subnegotiations))
    (payload,) = [payload for option, payload in crawler.subnegotiations if option == MSSP]
    pairs = dict(item.split(b"\x02") for item in payload.split(b"\x01")[1:])
    assert pairs[b"NAME"] == b"test.localhost" and pairs[b"PLAYERS"] == b"1"
    assert pairs[b"CODEBASE"].startswith(b"VibeMUSE ") and int(pairs[b"UPTIME"]) > 0


@pytest.mark.gen_test(timeout=30)
async def test_mccp2_compresses_everything_after_it_starts(connect, world):
    bob = await world.player("Bob")
    alice = await connect(mccp=True)
    await alice.login("create", "Alice")
    await acked(bob.ws, "say", {"text": "Squeeze " * 200})
    await alice.expect('Bob says, "Squeeze Squeeze')
    assert 0 < alice.compressed_bytes < 1000  # 1,600 bytes said, the roster and more read
    alice.send_raw(bytes((IAC, DONT, MCCP2)))  # compression off: the stream ends, plain text follows
    await acked(bob.ws, "say", {"text": "Plain again."})
    await alice.expect('Bob says, "Plain again."')
    alice.send_line("QUIT")
    assert "Goodbye." in await alice.closed()


@pytest.mark.gen_test(timeout=30)
async def test_gmcp_room_players_and_channels(connect, world):
    bob = await world.player("Bob")
    await channel(world, bob)
    alice = await connect(gmcp=True)
    await alice.login("create", "Alice")
    assert alice.gmcp_messages("Char.Name") == [{"name": "Alice", "fullname": "@alice:test.localhost"}]
    assert alice.gmcp_messages("Comm.Channel.List") == [[]]
    (info,) = alice.gmcp_messages("Room.Info")
    assert info["name"] == "Town Square" and info["num"].startswith("!")
    (players,) = alice.gmcp_messages("Room.Players")
    assert {p["name"] for p in players} == {"Alice", "Bob"}
    alice.send_line("addcom pub=Public")
    await alice.wait_for(lambda: len(alice.gmcp_messages("Comm.Channel.List")) == 2)
    assert alice.gmcp_messages("Comm.Channel.List")[1] == [{"name": "Public", "caption": "Public", "command": "+pub"}]
    await acked(bob.ws, "channel", {"channelId": "#public:test.localhost", "text": "Welcome!"})
    await alice.wait_for(lambda: alice.gmcp_messages("Comm.Channel.Text"))
    assert alice.gmcp_messages("Comm.Channel.Text") == [
        {"channel": "Public", "talker": "Bob", "text": '<Public> Bob says, "Welcome!"'}]
    carol = await world.player("Carol")
    await alice.expect("Carol has connected.")
    assert alice.gmcp_messages("Room.AddPlayer") == [{"name": "Carol", "fullname": carol.user_id}]
    await world.wait_offline(carol)
    await alice.expect("Carol has disconnected.")
    assert alice.gmcp_messages("Room.RemovePlayer") == ["Carol"]


@pytest.mark.gen_test(timeout=30)
async def test_unknown_options_are_refused_and_never_loop(connect):
    client = await connect()
    msdp, mccp3 = 69, 87
    client.send_raw(bytes((IAC, WILL, msdp, IAC, DO, mccp3, IAC, WONT, msdp, IAC, DONT, mccp3)))
    client.send_line("WHO")
    await client.expect("logged in.")
    assert (DONT, msdp) in client.negotiations and (WONT, mccp3) in client.negotiations
    assert client.negotiations.count((DONT, msdp)) == 1 and client.negotiations.count((WONT, mccp3)) == 1


@pytest.mark.gen_test(timeout=30)
async def test_hostile_bytes_never_break_the_session(connect, world, server):
    bob = await world.player("Bob")
    alice = await connect()
    await alice.login("create", "Alice")
    # Telnet commands and NULs in the middle of a line, and an escape the sanitizer drops.
    alice.send_raw(b'"he' + bytes((IAC, 241)) + b"l\x00l" + bytes((IAC, WILL, 99)) + b"o \x1b[31mthere\r\n")
    assert await rendered(bob.ws) == 'Alice says, "hello [31mthere"'
    assert (DONT, 99) in alice.negotiations
    alice.send_raw(b'"caf\xe9 in Latin-1\r\n')  # not UTF-8
    await alice.expect("not UTF-8 text")
    alice.send_raw(b'"' + b"x" * (4 * server.context.config.max_text_length + 300) + b"\r\n")
    await alice.expect("That line is too long")
    alice.send_raw(bytes((IAC, SB, 24)) + b"\x00" + b"y" * 5000 + bytes((IAC, 240)))  # an endless subnegotiation
    alice.send_line('"still here')
    assert await rendered(bob.ws) == 'Alice says, "still here"'
    assert "Alice" in [user["username"] for user in server.context.presence.who()[0]]


@pytest.mark.gen_test(timeout=30)
async def test_disconnect_mid_line_ends_the_session_and_its_token(connect, world, server):
    alice = await connect()
    await alice.login("create", "Alice")
    (connection,) = telnet_connections(server)
    token_hash = connection.token_hash
    before = world.event_count()
    alice.send_raw(b'"half a li')
    alice.close()
    for _ in range(200):
        if not server.context.registry.is_online("@alice:test.localhost") and not server.telnet.open:
            break
        await asyncio.sleep(0.02)
    assert not server.context.registry.is_online("@alice:test.localhost")
    for _ in range(200):
        found = await server.context.storage.get_access_token(token_hash)
        if found and found[0].revoked_ts is not None:
            break
        await asyncio.sleep(0.02)
    assert found[0].revoked_ts is not None
    assert world.event_count() == before  # the half line was never run


@pytest.mark.gen_test(timeout=30)
async def test_heartbeat_pings_with_timing_marks_and_drops_the_silent(connect, server):
    alice = await connect(timing_mark=True)
    await alice.login("create", "Alice")
    connection = telnet_connections(server)[0]
    assert connection.options.answers_timing_mark
    before = alice.negotiations.count((DO, TIMING_MARK))
    registry, clock = server.context.registry, server.context.clock
    await Heartbeat(registry, timeout=60, clock=clock).beat()
    await alice.wait_for(lambda: alice.negotiations.count((DO, TIMING_MARK)) > before)
    far_future = asyncio.get_running_loop().time() + 1e6
    closed = await Heartbeat(registry, timeout=60, clock=clock, monotonic=lambda: far_future).beat()
    assert closed == 1
    assert "Your connection timed out." in await alice.closed()


@pytest.mark.gen_test(timeout=30)
async def test_python_telnetlib_plays_beside_a_websocket_player(telnet_port, world):
    """The standard library's telnet client (it refuses every option) logs in and talks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import telnetlib

    bob = await world.player("Bob")

    def play() -> bytes:
        with telnetlib.Telnet("127.0.0.1", telnet_port, timeout=10) as session:
            session.read_until(b"QUIT", 10)
            session.write(f"create Alice {PASSWORD}\r\n".encode())
            session.read_until(b"Players:", 10)
            session.write(b"\"Hello from telnetlib.\r\n")
            seen = session.read_until(b"Bob waves.", 10)
            session.write(b"QUIT\r\n")
            return seen + session.read_all()

    playing = asyncio.get_running_loop().run_in_executor(None, play)
    assert await rendered(bob.ws) == 'Alice says, "Hello from telnetlib."'
    await acked(bob.ws, "pose", {"text": "waves."})
    seen = await playing
    assert b"Bob waves.\r\n" in seen and seen.endswith(b"Goodbye.\r\n")


@pytest.mark.gen_test(timeout=30)
async def test_shutdown_tells_telnet_players_and_closes(server_config, clock):
    from tests.conftest import FAST_HASHER
    from vibemuse.app import VibeMuseServer

    own = await VibeMuseServer.create(server_config, clock=clock, hasher=FAST_HASHER)
    port = own.listen_telnet(0, "127.0.0.1")
    playing = await TelnetClient.open(port)
    waiting = await TelnetClient.open(port)
    try:
        await playing.login("create", "Alice")
        await waiting.expect("QUIT")
        await own.shutdown()
        assert "The server is shutting down." in await playing.closed()
        assert "The server is shutting down." in await waiting.closed()
        assert not own.telnet.open
    finally:
        playing.close()
        waiting.close()
