"""An output-stationary systolic array core, generic over what its cells multiply.

Dataflow (output stationary): cell (r, c) accumulates one output O[m_r, n_c] of an R x C
output tile. Each step, every row receives a row token (activation data) and every column a
column token (weight data). Row tokens move one cell right per cycle, column tokens one cell
down, so after skewing row r by r cycles and column c by c cycles, cell (r, c) sees the row and
column tokens of the same step together, r + c cycles after they entered. The last step of a
tile carries ``last``; when a cell sees it, it copies its sum into a result register and starts
the next tile from zero, so the next tile's steps stream in while this tile drains.

The array itself never stalls: gaps between steps travel as bubbles. What a cell does with its
tokens is a :class:`CellKind`: a list of (x, y) multiplier lanes built from the two tokens. The
dense baseline has one lane (a * w); S2TA's cells mux their lanes' operands out of blocks.
The kind also sets the cell's depth (:attr:`CellKind.stages`): tokens, products, accumulate,
and, for kinds with more than one lane per output, a lane-sum register between the products
and the accumulator, so the lanes' adder and the accumulator's do not share a cycle.

Control along anti-diagonals: a step reaches every cell with r + c = k at the same edge, so all
cells of an anti-diagonal share its step's ``valid`` and ``last``. One chain of R + C stages in
the core (R + C + 1 for cells with the lane-sum stage, whose last sum is one edge later)
carries them, and each cell reads its anti-diagonal's taps, instead of every cell registering
its own copies (4 flip-flops per cell that a flattening synthesis merges anyway, and a
hierarchical one cannot). The core also decodes, once per tap, what the cells do with them
(:func:`control_layout`: ``add``, ``capture`` = ``valid & last`` and, with the lane-sum stage,
``lanes``, the previous tap's ``valid``), so no cell holds a gate or a flip-flop for the shared
control.

Hierarchy: :class:`SystolicCore` (skew, control chain, drain control) holds C identical
:class:`SystolicColumn` blocks, each a stack of R identical :class:`SystolicCell` blocks with
its column's drain select (an AND-OR of the R sums on a one-hot row select, which the core
keeps as a one-hot register, so no column decodes it). Both are registered through
:func:`~.hier.shared`, so generated Verilog holds one cell module and one column module
(instantiated R and C times) and synthesis maps each once. Columns rather than a flat R x C
grid of cells (as Gemmini groups PEs into the tiles of a mesh): the core then wires C blocks,
not R x C, and only the row tokens cross between them, while the column tokens and all sums but
the selected one stay inside a column; that keeps the netlist the core holds, and the time to
generate it, small.

Drain and stalls: when every cell has captured a tile, the result rows leave through ``o``, one
row of C sums per transfer, top row first (an R:1 selection per column). A tile's ``last``
step is not accepted while the previous tile is still draining, so result registers are never
overwritten before they are read; all other steps are always accepted.
"""

import dataclasses
from collections.abc import Callable

from amaranth import Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .hier import shared

__all__ = ["CellKind", "mac_kind", "SystolicCell", "SystolicColumn", "SystolicCore", "DelayLine",
           "delayed", "SHARED_DELAY", "step_layout",
           "control_layout", "core_latency", "token_bits", "lane_sum_width", "lane_sum_bits"]


@dataclasses.dataclass(frozen=True)
class CellKind:
    """What one cell multiplies.

    ``lanes(a, w)`` returns the (x, y) operand pairs of the cell's multipliers for a row token
    ``a`` (shape ``row``) and a column token ``w`` (shape ``col``); the cell adds their
    products. Operands are signed ``data_width``-bit values.

    A tensor cell (S2TA's TPE) computes ``outputs`` = ``out_rows`` x (``outputs`` /
    ``out_rows``) outputs at once from one row token (``out_rows`` activation operands) and
    one column token (``outputs / out_rows`` weight operands): ``lanes`` then returns
    ``multipliers`` pairs grouped by output (output o = row * out_cols + column, each output's
    ``multipliers / outputs`` lanes together), and each output has its own accumulator.
    ``adder_tree`` sums an output's lanes with a balanced tree instead of a chain.

    A cell's register stages (:attr:`stages`) follow from the kind, and every depth above the
    cell (:func:`core_latency`, the cycle models) is read from here.
    """

    name: str
    row: object                     # shape of a row token's data
    col: object                     # shape of a column token's data
    multipliers: int
    lanes: Callable
    outputs: int = 1
    out_rows: int = 1
    adder_tree: bool = False

    @property
    def out_cols(self) -> int:
        """Outputs per row of the cell's output block."""
        return self.outputs // self.out_rows

    @property
    def lanes_per_output(self) -> int:
        """Multiplier lanes summed into each output."""
        return self.multipliers // self.outputs

    @property
    def lane_sum(self) -> bool:
        """The cell registers each output's lane sum before accumulating it: it has more than
        one lane per output, whose adder would otherwise share the accumulator's cycle."""
        return self.lanes_per_output > 1

    @property
    def stages(self) -> int:
        """Register stages of a cell: tokens, products, the lane sum (only with
        :attr:`lane_sum`), accumulate: 3 or 4."""
        return 4 if self.lane_sum else 3


def mac_kind(width: int) -> CellKind:
    """The plain multiply-accumulate cell: one signed ``width``-bit product per cycle, of the
    dense array (``dense-array``) and of the dense core behind Sparse-on-Dense's decoders."""
    return CellKind("mac", signed(width), signed(width), 1, lambda a, w: [(a, w)])


def step_layout(kind: CellKind, rows: int, cols: int) -> data.StructLayout:
    """One aligned step: a row token per row, a column token per column, and ``last``."""
    return data.StructLayout({
        "a": data.ArrayLayout(kind.row, rows),
        "w": data.ArrayLayout(kind.col, cols),
        "last": 1,
    })


def control_layout(kind: CellKind) -> data.StructLayout:
    """A cell's sum-stage control, decoded once per anti-diagonal by the core (see the module
    docs): ``add``, the anti-diagonal's step is valid: the accumulator adds the (lane) sum;
    ``capture``, it is the tile's last step: the result register takes the sum and the
    accumulator restarts from zero; with the kind's lane-sum stage (:attr:`CellKind.lane_sum`)
    also ``lanes``, the step one tap earlier, whose products the lane-sum registers take."""
    fields = {"add": 1, "capture": 1}
    if kind.lane_sum:
        fields["lanes"] = 1
    return data.StructLayout(fields)


def core_latency(kind: CellKind, rows: int, cols: int) -> int:
    """Edges from accepting a tile's ``last`` step to its first result row leaving through
    ``o`` (with ``o.ready`` high): step register 1, skew r, cell input c + 1, products 1, lane
    sum 1 (kinds with :attr:`CellKind.lane_sum` only), result 1, output 1 -> rows + cols +
    ``kind.stages`` - 1 for the bottom-right cell (rows + cols + 2, or + 3 with the lane
    sum)."""
    return rows + cols + kind.stages - 1


def token_bits(kind: CellKind) -> int:
    """Bits of a cell's token registers (``o_row`` and ``o_col``), written every edge."""
    return Shape.cast(kind.row).width + Shape.cast(kind.col).width


def lane_sum_width(kind: CellKind, data_width: int, acc_width: int) -> int:
    """Bits of one output's lane-sum register (kinds with :attr:`CellKind.lane_sum`): the sum
    of its lanes' ``2 * data_width``-bit products, no wider than the accumulator it feeds
    (which wraps at ``acc_width`` anyway)."""
    growth = (kind.lanes_per_output - 1).bit_length()
    return min(2 * data_width + growth, acc_width)


def lane_sum_bits(kind: CellKind, data_width: int, acc_width: int) -> int:
    """Bits of a cell's lane-sum registers, written on every step (0 without the stage)."""
    if not kind.lane_sum:
        return 0
    return kind.outputs * lane_sum_width(kind, data_width, acc_width)


class SystolicCell(wiring.Component):
    """One cell of a systolic array: passes its tokens on and accumulates its lanes' products.

    Parameters
    ----------
    kind : CellKind
        What the cell multiplies.
    data_width, acc_width : int
        Operand and accumulator widths; the sum wraps at ``acc_width``.
    zvcg : bool
        Zero-value clock gating: a lane with a zero operand keeps its product register (no
        toggling in the multiplier output path) and adds a forced zero.

    Members
    -------
    i_row : In(kind.row)
        Row token from the left neighbour.
    i_col : In(kind.col)
        Column token from the neighbour above.
    o_row : Out(kind.row)
        ``i_row`` one edge later, for the right neighbour: the cell's row token register.
    o_col : Out(kind.col)
        ``i_col`` one edge later, for the neighbour below: the cell's column token register.
    i_step : In(1)
        The tokens in ``o_row``/``o_col`` are a step: multiply them (its anti-diagonal's
        ``valid``, from the array).
    i_sum : In(control_layout(kind))
        The anti-diagonal's control ``kind.stages`` - 2 edges after ``i_step`` (one, or two
        with the lane-sum stage), decoded by the core: ``add`` (the product registers, or the
        lane-sum registers, hold a step: add it to the sum), ``capture`` (it is the tile's last
        step: ``o_sum`` takes the sum, the accumulator restarts from zero) and, with the
        lane-sum stage, ``lanes`` (the control one edge earlier, one edge after ``i_step``:
        the product registers hold a step, the lane-sum registers take its sums).
    o_sum : Out(signed(acc_width))
        Sum of the last finished tile; it holds until the next tile's ``last`` step.

    No gate of the cell decodes control that every cell of an anti-diagonal shares: the core
    decodes ``i_sum`` once per anti-diagonal (:class:`SystolicCore`). When each cell decoded
    ``valid & last`` itself, a flattening synthesis merged those gates (and the buffers of
    their fan-out to every accumulator bit) across the cells of an anti-diagonal, which a
    hierarchical one, mapping the cell once, cannot (see :mod:`sparsegen.gen.bench_tools`).

    Timing
    ------
    ``kind.stages`` register stages (:attr:`CellKind.stages`). A kind with one lane per output
    (the dense MAC) has three: the tokens (``o_row``/``o_col``), the lanes' products, the sum.
    A step whose tokens are sampled at edge E has its products registered at E + 1 and added
    at E + 2; with ``last`` the tile's sum is on ``o_sum`` after E + 2 and the accumulator
    restarts from zero at the same edge, so tiles follow each other without a gap. A kind with
    more lanes per output (:attr:`CellKind.lane_sum`: S2TA's TPEs, HighLight's cells) has four:
    each output's lanes are summed (``_chain``/``_tree``: a carry-save tree, then a carry tree)
    into a lane-sum register at E + 2, which the accumulator adds at E + 3 (``o_sum`` after
    E + 3). In one cycle, the lane adder and the ``acc_width`` accumulator adder were the
    critical path of the default ``s2ta`` and ``highlight`` (sky130hd, ``bench timing``: 7.74 ns
    each against ``dense-array``'s 5.16; with the stage highlight 5.49 ns and s2ta 6.29, in
    the product stage, once its output DAP had a stage too). The clock is then limited by the
    product stage (the kind's operand selection, S2TA's BZ:1 muxes or index match,
    HighLight's lane muxes, in series with a ``data_width`` x ``data_width`` multiplier) or
    the accumulator's adder, as in the dense cell.
    """

    def __init__(self, kind: CellKind, data_width: int, acc_width: int, zvcg: bool = False):
        self._kind, self._data_width = kind, data_width
        self._acc_width, self._zvcg = acc_width, zvcg
        super().__init__({
            "i_row": In(kind.row),
            "i_col": In(kind.col),
            "o_row": Out(kind.row),
            "o_col": Out(kind.col),
            "i_step": In(1),
            "i_sum": In(control_layout(kind)),
            "o_sum": Out(_sums_shape(kind.outputs, acc_width)),
        })

    @property
    def key(self) -> tuple:
        """What the cell's hardware depends on (the ``key`` of :func:`~.hier.shared`)."""
        return (self._kind, self._data_width, self._acc_width, self._zvcg)

    @staticmethod
    def probes(kind: CellKind, zvcg: bool, path: str) -> dict[str, list[str]]:
        """Where a layer harness sees the actions of a cell of ``kind`` (with ``zvcg``),
        without changing its hardware.

        Returns probe name -> 1-bit Verilog expressions over the signals the generated cell
        module declares (its ports and named registers), each name prefixed with ``path``
        (the cell instance's hierarchical path, ending in ``.``). A harness adds up the true
        expressions of each probe every cycle:

        * ``step``: the sum stage takes a step (``i_sum.add``): one accumulator add per output,
          and the ``kind.multipliers`` lanes' multiplies of the step (the products registered
          ``kind.stages`` - 2 edges before) and their operand selections; with the lane-sum
          stage also the step's lane-sum registers, written one edge before;
        * ``last``: ... and it is the tile's last step (``i_sum.capture``): ``o_sum`` is
          written;
        * ``gated`` (``zvcg`` only): one term per lane, true when that step's lane had a zero
          operand, so its product register was held (``gated<j>``) and no multiply was done;
        * ``idle`` (``zvcg`` only): one term per output, true when every lane of that output
          was gated, so its accumulator adds zero and keeps its value (with the lane-sum
          stage: its lane-sum register takes zero, which the accumulator adds one edge later).

        ``gated`` and ``idle`` are seen where the ``gated<j>`` flags are the step's: at the sum
        stage (``i_sum.add``), or at the lane-sum stage (``i_sum.lanes``) for kinds that have
        it. Every step passes both stages, so a run counts each step once either way.
        """
        layout = control_layout(kind)
        valid = f"{path}i_sum[{layout['add'].offset}]"
        last = f"{path}i_sum[{layout['capture'].offset}]"
        probes = {"step": [valid], "last": [last]}
        if zvcg:
            products = (f"{path}i_sum[{layout['lanes'].offset}]" if kind.lane_sum else valid)
            probes["gated"] = [f"{products} & {path}gated{j}" for j in range(kind.multipliers)]
            per = kind.lanes_per_output
            probes["idle"] = [" & ".join([products, *(f"{path}gated{j}"
                                                      for j in range(o * per, (o + 1) * per))])
                              for o in range(kind.outputs)]
        return probes

    def elaborate(self, platform):
        m = Module()
        width = self._data_width
        m.d.sync += [self.o_row.eq(self.i_row), self.o_col.eq(self.i_col)]
        kind = self._kind
        products = []
        for j, (x, y) in enumerate(kind.lanes(self.o_row, self.o_col)):
            prod = Signal(signed(2 * width), name=f"prod{j}")
            if self._zvcg:
                gated = Signal(name=f"gated{j}")
                m.d.sync += gated.eq((x == 0) | (y == 0))
                with m.If(self.i_step & (x != 0) & (y != 0)):
                    m.d.sync += prod.eq(x * y)
                products.append(Mux(gated, 0, prod))
            else:
                with m.If(self.i_step):
                    m.d.sync += prod.eq(x * y)
                products.append(prod)
        per = kind.lanes_per_output
        for o in range(kind.outputs):
            lanes = products[o * per:(o + 1) * per]
            total = _tree(lanes) if kind.adder_tree else _chain(lanes)
            suffix = "" if kind.outputs == 1 else str(o)
            if kind.lane_sum:
                # Its own stage: the lanes' adder and the accumulator's would set the clock.
                lane_sum = Signal(signed(lane_sum_width(kind, width, self._acc_width)),
                                  name=f"lane_sum{suffix}")
                with m.If(self.i_sum.lanes):
                    m.d.sync += lane_sum.eq(total)
                total = lane_sum
            result = self.o_sum if kind.outputs == 1 else self.o_sum[o]
            self._accumulate(m, total, result, f"acc{suffix}")
        return m

    def _accumulate(self, m, total, result, name):
        acc = Signal(signed(self._acc_width), name=name)
        value = Signal(signed(self._acc_width), name=f"{name}_next")    # one adder, both uses
        m.d.comb += value.eq(acc + total)
        with m.If(self.i_sum.capture):
            m.d.sync += acc.eq(0)
        with m.Elif(self.i_sum.add):
            m.d.sync += acc.eq(value)
        with m.If(self.i_sum.capture):
            m.d.sync += result.eq(value)


def _sums_shape(outputs: int, acc_width: int):
    """A cell's ``o_sum``: one signed sum, or an array of ``outputs`` of them."""
    return (signed(acc_width) if outputs == 1
            else data.ArrayLayout(signed(acc_width), outputs))


def _chain(values):
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


def _tree(values):
    """A balanced adder tree over ``values`` (log2 levels instead of a chain)."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class SystolicColumn(wiring.Component):
    """A column of R :class:`SystolicCell` blocks and the R:1 mux that drains their sums.

    Parameters
    ----------
    kind : CellKind
    rows : int
        Cells in the column.
    data_width, acc_width, zvcg
        As :class:`SystolicCell`.

    Members
    -------
    i_row : In(rows * width of kind.row)
        The row tokens entering the cells from the left: an ``ArrayLayout(kind.row, rows)``,
        row 0 in the least significant bits.
    o_row : Out(rows * width of kind.row)
        The row tokens leaving to the right, each one edge after it entered, as ``i_row``.
    i_col : In(kind.col)
        The column token entering the top cell; it moves one cell down per edge.
    i_step : In(rows)
        Taps of the array's control chain: bit j is the ``valid`` of the step that reaches the
        column's row-j cell now (its ``i_step``).
    i_sum : In(ArrayLayout(control_layout(kind), rows))
        Element j: the sum control of the row-j cell (its anti-diagonal's, ``kind.stages`` - 2
        edges after its ``i_step``), decoded by the core.
    sel : In(rows * kind.out_rows)
        The output row whose sums ``o_sum`` shows, one-hot (decoded once by the core): row
        ``a`` of cell ``r`` is bit ``r * kind.out_rows + a``; no bit set shows zeros.
    o_sum : Out(kind.out_cols * acc_width)
        The ``kind.out_cols`` sums of output row ``sel`` (``signed(acc_width)`` when it is one).

    The row tokens are plain bit vectors (viewed as their layout inside): a layout-typed port
    makes Amaranth name every field of it, in the column and in the core for each of the C
    columns, which took most of the generation time of large arrays.

    Timing
    ------
    Cell r samples ``i_row[r]`` at the edge where the column token that entered ``i_col`` r
    edges earlier reaches it; each cell's sum follows as in :class:`SystolicCell`. ``o_sum`` is
    combinational from ``sel`` (an AND-OR of R terms of ``acc_width`` bits, off the cells'
    paths).
    """

    def __init__(self, kind: CellKind, rows: int, data_width: int, acc_width: int,
                 zvcg: bool = False):
        self._kind, self._rows, self._data_width = kind, rows, data_width
        self._acc_width, self._zvcg = acc_width, zvcg
        self._tokens = data.ArrayLayout(kind.row, rows)
        super().__init__({
            "i_row": In(self._tokens.size),
            "o_row": Out(self._tokens.size),
            "i_col": In(kind.col),
            "i_step": In(rows),
            "i_sum": In(data.ArrayLayout(control_layout(kind), rows)),
            "sel": In(rows * kind.out_rows),
            "o_sum": Out(signed(acc_width) if kind.outputs == 1
                         else unsigned(kind.out_cols * acc_width)),
        })

    @property
    def key(self) -> tuple:
        """What the column's hardware depends on (the ``key`` of :func:`~.hier.shared`)."""
        return (self._kind, self._rows, self._data_width, self._acc_width, self._zvcg)

    def elaborate(self, platform):
        m = Module()
        i_row = data.View(self._tokens, self.i_row)
        o_row = data.View(self._tokens, self.o_row)
        kind = self._kind
        out_rows, out_cols = kind.out_rows, kind.out_cols
        sums = Signal(data.ArrayLayout(len(self.o_sum), self._rows * out_rows)) \
            if kind.outputs > 1 else Signal(data.ArrayLayout(signed(self._acc_width), self._rows))
        above = self.i_col
        for r in range(self._rows):
            cell = SystolicCell(self._kind, self._data_width, self._acc_width, self._zvcg)
            m.submodules[f"cell{r}"] = shared(platform, cell, name="cell", key=cell.key)
            m.d.comb += [
                cell.i_row.eq(i_row[r]),
                o_row[r].eq(cell.o_row),
                cell.i_col.eq(above),
                cell.i_step.eq(self.i_step[r]),
                cell.i_sum.eq(self.i_sum[r]),
            ]
            if kind.outputs == 1:
                m.d.comb += sums[r].eq(cell.o_sum)
            else:
                for a in range(out_rows):
                    m.d.comb += sums[r * out_rows + a].eq(
                        Cat(*(cell.o_sum[a * out_cols + c] for c in range(out_cols))))
            above = cell.o_col
        selected = 0
        for n in range(self._rows * out_rows):
            selected = selected | Mux(self.sel[n], Value.cast(sums[n]), 0)
        m.d.comb += self.o_sum.eq(selected)
        return m


SHARED_DELAY = 16
"""The shortest delay :func:`delayed` takes from a shared :class:`DelayLine` (a power of two);
shorter delays, and the remainder of longer ones, are registers in the caller's module."""


class DelayLine(wiring.Component):
    """``depth`` registers in series (reset to 0): ``q`` is ``d`` as it was ``depth`` edges
    ago. One shared module per (width, depth) (:func:`delayed`)."""

    def __init__(self, width: int, depth: int):
        self.key = (width, depth)
        super().__init__({"d": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.q.eq(_registers(m, self.d, self.key[1], "stage"))
        return m


def _registers(m: Module, value, count: int, prefix: str) -> Value:
    """``value`` through ``count`` registers in series in ``m`` (reset to 0), named
    ``<prefix>1``, ``<prefix>2``, ..."""
    value = Value.cast(value)
    for n in range(count):
        reg = Signal(len(value), name=f"{prefix}{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def delayed(m: Module, platform, value, depth: int, name: str) -> Value:
    """``value`` delayed by ``depth`` edges: ``depth`` mod :data:`SHARED_DELAY` registers in
    ``m`` (``<name>1``, ``<name>2``, ...), then one :class:`DelayLine` submodule
    ``<name>_d<n>`` per power of two n >= :data:`SHARED_DELAY` in ``depth``, each a shared
    module per (width, n). The registers are the same, ``depth`` of them in series.

    Why: an R x R array's edge skew is R(R-1) registers, which the core elaborated and emitted
    one by one; at 64 x 64 they were half of ``gen s2ta``'s time (28.6 s, 388 MB). With the
    long delays shared it took 14.5 s and 230 MB, and 32 x 32 10.1 -> 6.7 s (2026-12-02, a
    two-core host on which the same runs took 1.5 to 2 times as long as on earlier ones).
    Below :data:`SHARED_DELAY` an instance saves little, and arrays of up to 16 rows and
    columns, every configuration the benches synthesize, keep the Verilog they had."""
    value = _registers(m, value, depth % SHARED_DELAY, name)
    bit = SHARED_DELAY
    while bit <= depth:
        if depth & bit:
            line = DelayLine(len(value), bit)
            m.submodules[f"{name}_d{bit}"] = shared(platform, line,
                                                    name=f"delay{bit}_w{len(value)}",
                                                    key=line.key)
            m.d.comb += line.d.eq(value)
            value = line.q
        bit <<= 1
    return value


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
    o : Out(stream.Signature(ArrayLayout(signed(acc_width), cols * kind.out_cols)))
        Result rows: ``rows * kind.out_rows`` transfers per tile, row 0 first (for tensor
        cells, output row a of cell row r is drain row r * out_rows + a).

    Timing
    ------
    One step per cycle. A tile of S steps whose ``last`` step is accepted at edge E has its
    result rows leave at edges E + :func:`core_latency` ... + D - 1 (``o`` ready; D =
    rows x ``kind.out_rows`` drain rows). The next tile's ``last`` step is accepted no earlier
    than the edge after its final row left, so a tile takes max(S, core_latency + D) cycles in
    steady state.
    """

    def __init__(self, kind: CellKind, rows: int, cols: int, data_width: int, acc_width: int,
                 zvcg: bool = False):
        self._kind, self._rows, self._cols = kind, rows, cols
        self._data_width, self._acc_width, self._zvcg = data_width, acc_width, zvcg
        super().__init__({
            "i": In(stream.Signature(step_layout(kind, rows, cols))),
            "o": Out(stream.Signature(data.ArrayLayout(signed(acc_width),
                                                       cols * kind.out_cols))),
        })

    @staticmethod
    def probes(kind: CellKind, rows: int, cols: int, zvcg: bool,
               path: str) -> dict[str, list[str]]:
        """The :meth:`SystolicCell.probes` of every cell of a core with these arguments,
        merged: ``path`` is the core's instance path (ending in ``.``); cell (r, c) is
        ``<path>col<c>.cell<r>`` (the submodule names :meth:`elaborate` gives)."""
        merged: dict[str, list[str]] = {}
        for c in range(cols):
            for r in range(rows):
                for name, terms in SystolicCell.probes(kind, zvcg,
                                                       f"{path}col{c}.cell{r}.").items():
                    merged.setdefault(name, []).extend(terms)
        return merged

    def elaborate(self, platform):
        m = Module()
        rows, cols, kind = self._rows, self._cols, self._kind

        # -- input acceptance: everything but a `last` that would overwrite undrained results
        pending = Signal()      # a tile's last step is in; its results are not all out yet
        m.d.comb += self.i.ready.eq(~(self.i.payload.last & pending))
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)

        # -- step register
        step = Signal(step_layout(kind, rows, cols))
        step_valid = Signal()
        m.d.sync += step_valid.eq(take)
        with m.If(take):
            m.d.sync += step.eq(self.i.payload)

        # -- control chain: bit k of `valid`/`last` is the step that reaches anti-diagonal
        # r + c = k - 1 now (cell (r, c) samples its tokens at tap r + c + 1, and its sum
        # stage takes them at tap r + c + kind.stages - 1: the chain ends at the bottom-right
        # cell's).
        taps = rows + cols + kind.stages - 3
        valid_regs = Signal(taps, name="diag_valid")
        last_regs = Signal(taps, name="diag_last")
        m.d.sync += [valid_regs.eq(Cat(step_valid, valid_regs[:-1])),
                     last_regs.eq(Cat(step.last, last_regs[:-1]))]
        valid = Cat(step_valid, valid_regs)
        last = Cat(step.last, last_regs)
        # Each tap's sum control (control_layout), decoded here once for the cells of its
        # anti-diagonal into a signal of its own, which the columns slice (an expression would
        # be emitted again, gates and all, in every column that reads it); the lane-sum
        # stage's `lanes` is the tap before.
        layout = control_layout(kind)
        control = []
        for k in range(taps + 1):
            tap = Signal(layout.size, name=f"diag_ctl{k}")      # plain bits: no field aliases
            fields = data.View(layout, tap)
            m.d.comb += [fields.add.eq(valid[k]), fields.capture.eq(valid[k] & last[k])]
            if kind.lane_sum and k:
                m.d.comb += fields.lanes.eq(valid[k - 1])
            control.append(tap)
        first = kind.stages - 1     # the tap of cell (0, 0)'s sum control

        # -- skew: row r by r edges, column c by c edges (:func:`delayed`: long delays from
        # shared delay lines).
        # The registers are plain bit vectors: a layout-typed signal costs far more to
        # elaborate, and there are R(R-1)/2 + C(C-1)/2.
        row_in = [delayed(m, platform, step.a[r], r, f"row{r}_skew") for r in range(rows)]

        # -- the columns: row tokens pass from each column to the next
        drain_rows = rows * kind.out_rows
        row_sel = Signal(drain_rows, name="drain_row")  # one-hot: the row draining now
        tokens = Cat(*row_in)
        column_sums = []
        for c in range(cols):
            column = SystolicColumn(kind, rows, self._data_width, self._acc_width, self._zvcg)
            m.submodules[f"col{c}"] = shared(platform, column, name="column", key=column.key)
            m.d.comb += [
                column.i_row.eq(tokens),
                column.i_col.eq(delayed(m, platform, step.w[c], c, f"col{c}_skew")),
                column.i_step.eq(valid[c + 1:c + rows + 1]),
                column.i_sum.eq(Cat(*control[c + first:c + rows + first])),
                column.sel.eq(row_sel),
            ]
            tokens = column.o_row
            column_sums.append(column.o_sum)

        # -- drain: the bottom-right cell adds the last step at the chain's last tap; at that
        # edge its sum is final and the drain starts.
        captured = Signal()
        m.d.comb += captured.eq(valid[taps] & last[taps])
        draining = Signal()
        with m.If(take & self.i.payload.last):
            m.d.sync += pending.eq(1)
        with m.If(captured):
            m.d.sync += [draining.eq(1), row_sel.eq(1)]
        m.d.comb += self.o.valid.eq(draining)
        if kind.outputs == 1:
            m.d.comb += [self.o.payload[c].eq(column_sums[c]) for c in range(cols)]
        else:
            m.d.comb += self.o.payload.as_value().eq(Cat(*column_sums))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += row_sel.eq(row_sel << 1)
            with m.If(row_sel[-1]):
                m.d.sync += [draining.eq(0), pending.eq(0)]
        return m
