"""An output-stationary systolic array core, generic over what its cells multiply.

Dataflow (output stationary): cell (r, c) accumulates one output O[m_r, n_c] of an R x C
output tile. Each step, every row receives a row token (activation data) and every column a
column token (weight data). Row tokens move one cell right per cycle, column tokens one cell
down, so after skewing row r by r cycles and column c by c cycles, cell (r, c) sees the row and
column tokens of the same step together, r + c cycles after they entered. The last step of a
tile carries ``last``; when a cell sees it, it copies its sum into a result register and starts
the next tile from zero, so the next tile's steps stream in while this tile drains.

The array itself never stalls: tokens carry a valid bit and gaps travel as bubbles. What a cell
does with its tokens is a :class:`CellKind`: a list of (x, y) multiplier lanes built from the
two tokens. The dense baseline has one lane (a * w); S2TA's cells mux their lanes' operands out
of blocks.

Drain and stalls: when every cell has captured a tile, the result rows leave through ``o``, one
row of C sums per transfer, top row first (an R:1 mux per column). A tile's ``last`` step is
not accepted while the previous tile is still draining, so result registers are never
overwritten before they are read; all other steps are always accepted.
"""

import dataclasses
from collections.abc import Callable

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CellKind", "SystolicCore", "step_layout", "core_latency"]


@dataclasses.dataclass(frozen=True)
class CellKind:
    """What one cell multiplies.

    ``lanes(a, w)`` returns the (x, y) operand pairs of the cell's multipliers for a row token
    ``a`` (shape ``row``) and a column token ``w`` (shape ``col``); the cell adds their
    products. Operands are signed ``data_width``-bit values.
    """

    name: str
    row: object                     # shape of a row token's data
    col: object                     # shape of a column token's data
    multipliers: int
    lanes: Callable


def step_layout(kind: CellKind, rows: int, cols: int) -> data.StructLayout:
    """One aligned step: a row token per row, a column token per column, and ``last``."""
    return data.StructLayout({
        "a": data.ArrayLayout(kind.row, rows),
        "w": data.ArrayLayout(kind.col, cols),
        "last": 1,
    })


def core_latency(rows: int, cols: int) -> int:
    """Edges from accepting a tile's ``last`` step to its first result row leaving through
    ``o`` (with ``o.ready`` high): step register 1, skew r, cell input c + 1, product 1,
    result 1, output 1 -> rows + cols + 2 for the bottom-right cell."""
    return rows + cols + 2


class SystolicCore(wiring.Component):
    """R x C output-stationary systolic array with edge skew and a row-by-row drain.

    Parameters
    ----------
    kind : CellKind
        What each cell multiplies.
    rows, cols : int
        Array size.
    data_width, acc_width : int
        Operand and accumulator widths; sums wrap at ``acc_width``.
    zvcg : bool
        Zero-value clock gating: a lane with a zero operand keeps its product register
        (no toggling in the multiplier output path) and adds a forced zero.

    Members
    -------
    i : In(stream.Signature(step_layout(kind, rows, cols)))
        Aligned steps (the core skews them itself).
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols)))
        Result rows: ``rows`` transfers per tile, row 0 first.

    Timing
    ------
    One step per cycle. A tile of S steps whose ``last`` step is accepted at edge E has its
    result rows leave at edges E + :func:`core_latency` ... + rows - 1 (``o`` ready). The next
    tile's ``last`` step is accepted no earlier than the edge after its final row left, so a
    tile takes max(S, core_latency + rows) cycles in steady state.
    """

    def __init__(self, kind: CellKind, rows: int, cols: int, data_width: int, acc_width: int,
                 zvcg: bool = False):
        self._kind, self._rows, self._cols = kind, rows, cols
        self._data_width, self._acc_width, self._zvcg = data_width, acc_width, zvcg
        super().__init__({
            "i": In(stream.Signature(step_layout(kind, rows, cols))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(acc_width), cols))),
        })

    def elaborate(self, platform):
        m = Module()
        rows, cols, kind = self._rows, self._cols, self._kind
        row_token = data.StructLayout({"valid": 1, "last": 1, "data": kind.row})

        # -- input acceptance: everything but a `last` that would overwrite undrained results
        pending = Signal()      # a tile's last step is in; its results are not all out yet
        m.d.comb += self.i.ready.eq(~(self.i.payload.last & pending))
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)

        # -- step register and skew
        step = Signal(step_layout(kind, rows, cols))
        step_valid = Signal()
        m.d.sync += step_valid.eq(take)
        with m.If(take):
            m.d.sync += step.eq(self.i.payload)

        row_in, col_in = [], []
        for r in range(rows):
            token = Signal(row_token, name=f"row{r}_skew0")
            m.d.comb += [token.valid.eq(step_valid), token.last.eq(step.last),
                         token.data.eq(step.a[r])]
            for d in range(r):
                delayed = Signal(row_token, name=f"row{r}_skew{d + 1}")
                m.d.sync += delayed.eq(token)
                token = delayed
            row_in.append(token)
        for c in range(cols):
            token = step.w[c]
            for d in range(c):
                delayed = Signal(kind.col, name=f"col{c}_skew{d + 1}")
                m.d.sync += delayed.eq(token)
                token = delayed
            col_in.append(token)

        # -- the grid of cells
        results = [[None] * cols for _ in range(rows)]
        a_regs = [[Signal(row_token, name=f"a_{r}_{c}") for c in range(cols)]
                  for r in range(rows)]
        w_regs = [[Signal(kind.col, name=f"w_{r}_{c}") for c in range(cols)]
                  for r in range(rows)]
        for r in range(rows):
            for c in range(cols):
                m.d.sync += [
                    a_regs[r][c].eq(row_in[r] if c == 0 else a_regs[r][c - 1]),
                    w_regs[r][c].eq(col_in[c] if r == 0 else w_regs[r - 1][c]),
                ]
                results[r][c] = self._cell(m, f"{r}_{c}", a_regs[r][c], w_regs[r][c])

        # -- capture timing: the bottom-right cell captures core_latency - 1 edges after the
        # last step was accepted; then the drain starts.
        captured = Signal()
        delay = take & self.i.payload.last
        for d in range(core_latency(rows, cols) - 1):
            stage = Signal(name=f"last_delay{d}")
            m.d.sync += stage.eq(delay)
            delay = stage
        m.d.comb += captured.eq(delay)

        row_sel = Signal(range(max(rows, 2)))     # range(1) would be a 0-bit signal
        draining = Signal()
        with m.If(take & self.i.payload.last):
            m.d.sync += pending.eq(1)
        with m.If(captured):
            m.d.sync += [draining.eq(1), row_sel.eq(0)]
        m.d.comb += self.o.valid.eq(draining)
        for c in range(cols):
            column = data.ArrayLayout(signed(self._acc_width), rows)
            col_results = Signal(column, name=f"col{c}_results")
            m.d.comb += [col_results[r].eq(results[r][c]) for r in range(rows)]
            m.d.comb += self.o.payload[c].eq(col_results[row_sel])
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += row_sel.eq(row_sel + 1)
            with m.If(row_sel == rows - 1):
                m.d.sync += [draining.eq(0), pending.eq(0)]
        return m

    def _cell(self, m, name, a_tok, w_data):
        """One cell: per-lane product registers, then accumulate; returns its result register.
        """
        width, acc_width = self._data_width, self._acc_width
        lanes = self._kind.lanes(a_tok.data, w_data)
        prod_valid = Signal(name=f"pv_{name}")
        prod_last = Signal(name=f"pl_{name}")
        m.d.sync += [prod_valid.eq(a_tok.valid), prod_last.eq(a_tok.last)]
        products = []
        for j, (x, y) in enumerate(lanes):
            prod = Signal(signed(2 * width), name=f"p{j}_{name}")
            if self._zvcg:
                gated = Signal(name=f"g{j}_{name}")
                m.d.sync += gated.eq((x == 0) | (y == 0))
                with m.If(a_tok.valid & (x != 0) & (y != 0)):
                    m.d.sync += prod.eq(x * y)
                products.append(Mux(gated, 0, prod))
            else:
                with m.If(a_tok.valid):
                    m.d.sync += prod.eq(x * y)
                products.append(prod)
        total = products[0]
        for p in products[1:]:
            total = total + p
        acc = Signal(signed(acc_width), name=f"acc_{name}")
        result = Signal(signed(acc_width), name=f"res_{name}")
        with m.If(prod_valid):
            with m.If(prod_last):
                m.d.sync += [result.eq(acc + total), acc.eq(0)]
            with m.Else():
                m.d.sync += acc.eq(acc + total)
        return result
