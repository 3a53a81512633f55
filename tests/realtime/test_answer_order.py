"""``AnswerOrder``: answers in the order of the frames, even when one frame's answer comes late."""

from vibemuse.realtime.answers import AnswerOrder


def test_frames_that_do_not_wait_are_answered_at_once():
    sent: list[str] = []
    order = AnswerOrder(sent.append)
    for n in range(3):
        slot = order.open()
        order.answer(slot, f"ack {n}")
        assert sent[-1] == f"ack {n}"
        order.close(slot)
    assert sent == ["ack 0", "ack 1", "ack 2"] and order.waiting == 0


def test_answers_of_later_frames_wait_for_the_one_still_open():
    sent: list[str] = []
    order = AnswerOrder(sent.append)
    remote = order.open()  # its ack waits for the channel's home
    second, third = order.open(), order.open()
    order.answer(second, "ack 2")
    order.close(second)
    order.answer(third, "pong 3")
    assert sent == [] and order.waiting == 3
    order.answer(remote, "ack 1")
    assert sent == ["ack 1"]  # the oldest open slot's answers go at once
    order.close(remote)
    assert sent == ["ack 1", "ack 2", "pong 3"] and order.waiting == 1  # the third is still open
    order.close(third)
    assert order.waiting == 0


def test_two_waiting_frames_are_answered_in_their_order_whichever_finishes_first():
    sent: list[str] = []
    order = AnswerOrder(sent.append)
    first, second = order.open(), order.open()
    order.answer(second, "error 2")
    order.close(second)
    assert sent == []
    order.answer(first, "ack 1")
    order.close(first)
    assert sent == ["ack 1", "error 2"]
