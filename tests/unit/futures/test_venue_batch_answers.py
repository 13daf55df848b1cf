"""``FuturesRestVenue.edit_batch`` reading a ``batchorder`` answer: Kraken documents no
order for ``batchStatus`` ("The list is in no particular order"), so a send's status is
found by its ``order_tag`` and a cancel's or an edit's by its place among the untagged
ones, checked against the ``order_id`` it names. The REST client is a hand-written fake
answering in a chosen order."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.clock import FakeClock
from bot.core.errors import OrderStateUnknown, RejectedError
from bot.execution import orders as eo
from bot.execution.batch import BatchAmend
from bot.execution.venue_futures import FuturesRestVenue, as_instrument
from bot.futures import orders as fo
from bot.futures.instruments import FuturesInstrument, FuturesInstrumentTable


class AnsweringRest:
    """Answers every ``batch_order`` with ``answer`` (what the venue sent is kept)."""

    def __init__(self, answer: Sequence[fo.BatchItemResult]) -> None:
        self.answer = tuple(answer)
        self.sent: list[Sequence[fo.BatchInstruction]] = []

    async def batch_order(
        self, instructions: Sequence[fo.BatchInstruction]
    ) -> tuple[fo.BatchItemResult, ...]:
        self.sent.append(instructions)
        return self.answer


def status(state: str, order_id: str | None, tag: str | None = None) -> fo.BatchItemResult:
    return fo.BatchItemResult(state, tag, order_id, None, None, ())


def live(inst: FuturesInstrument, n: int, order_id: str) -> eo.Order:
    order = eo.new_order(
        cl_ord_id=f"c{n}", instrument=as_instrument(inst), side="buy", order_type="limit",
        qty=10_000, price=inst.price("60000"), strategy="s", now_ns=1,
    )  # fmt: skip
    return eo.acknowledge(order, order_id, now_ns=2)


async def edit_batch(
    inst: FuturesInstrument, answer: Sequence[fo.BatchItemResult]
) -> tuple[AnsweringRest, tuple[list[object], list[object], list[object]]]:
    rest = AnsweringRest(answer)
    venue = FuturesRestVenue(rest, FuturesInstrumentTable([inst]), FakeClock())  # type: ignore[arg-type]
    gone, a, b = live(inst, 0, "OID-0"), live(inst, 1, "OID-A"), live(inst, 2, "OID-B")
    new = eo.new_order(
        cl_ord_id="c3", instrument=as_instrument(inst), side="buy", order_type="limit",
        qty=10_000, price=inst.price("59000"), strategy="s", now_ns=3,
    )  # fmt: skip
    amends = [BatchAmend(a, None, inst.price("60500"), 1.0), BatchAmend(b, 20_000, None, 1.0)]
    cancelled, amended, placed = await venue.edit_batch([gone], amends, [new], ages_s=[1.0])
    return rest, (list(cancelled), list(amended), list(placed))


async def test_the_request_is_cancels_then_edits_then_sends(inst: FuturesInstrument) -> None:
    answer = [
        status("cancelled", "OID-0"),
        status("edited", "OID-A"),
        status("edited", "OID-B"),
        status("placed", "OID-NEW", tag="0"),
    ]
    rest, (cancelled, amended, placed) = await edit_batch(inst, answer)
    (sent,) = rest.sent
    assert [type(x) for x in sent] == [fo.BatchCancel, fo.BatchEdit, fo.BatchEdit, fo.BatchSend]
    edit_a, edit_b = sent[1], sent[2]
    assert isinstance(edit_a, fo.BatchEdit) and isinstance(edit_b, fo.BatchEdit)
    assert (edit_a.order_id, edit_a.limit_price, edit_a.size) == (
        "OID-A",
        inst.price("60500"),
        None,
    )
    assert (edit_b.order_id, edit_b.size, edit_b.limit_price) == ("OID-B", 20_000, None)
    assert (cancelled, amended, placed) == ([None], [None, None], ["OID-NEW"])


async def test_a_reordered_answer_is_read_by_order_id_and_tag(inst: FuturesInstrument) -> None:
    """Kraken's own example answers in another order than it asks: each status still
    reaches its instruction (read by place alone, A would be told B's success and B
    A's refusal)."""
    answer = [
        status("placed", "OID-NEW", tag="0"),
        status("cancelled", "OID-0"),
        status("edited", "OID-B"),
        status("postWouldExecute", "OID-A"),
    ]
    _, (cancelled, amended, placed) = await edit_batch(inst, answer)
    assert cancelled == [None]
    refused, done = amended
    assert isinstance(refused, RejectedError) and refused.code == "postWouldExecute"
    assert done is None
    assert placed == ["OID-NEW"]


async def test_statuses_out_of_order_are_each_found(inst: FuturesInstrument) -> None:
    answer = [
        status("edited", "OID-B"),
        status("postWouldExecute", "OID-A"),
        status("cancelled", "OID-0"),
        status("placed", "OID-NEW", tag="0"),
    ]
    _, (cancelled, amended, _) = await edit_batch(inst, answer)
    assert cancelled == [None]
    assert isinstance(amended[0], RejectedError) and amended[1] is None


async def test_a_status_naming_no_instruction_is_unknown(inst: FuturesInstrument) -> None:
    answer = [
        status("cancelled", "OID-0"),
        status("edited", "OID-A"),
        status("edited", "OID-ELSE"),
        status("placed", "OID-NEW", tag="0"),
    ]
    _, (_, amended, _) = await edit_batch(inst, answer)
    assert amended[0] is None
    assert isinstance(amended[1], OrderStateUnknown)  # amended or not: looked up


async def test_a_refused_send_that_traded_is_unknown(inst: FuturesInstrument) -> None:
    """A send refused with an EXECUTION among its events traded all the same: the engine
    looks it up (its fills are real) instead of recording a rejection."""
    traded = fo.BatchItemResult(
        "wouldNotReducePosition", "0", "OID-NEW", None, None, (fo.OrderEvent("EXECUTION"),)
    )
    answer = [status("cancelled", "OID-0"), status("edited", "OID-A"), status("edited", "OID-B")]
    _, (_, _, placed) = await edit_batch(inst, [*answer, traded])
    (unknown,) = placed
    assert isinstance(unknown, OrderStateUnknown) and unknown.code == "wouldNotReducePosition"
