"""SRAM area, access energy and leakage for a memory of W words x B bits, from the three
OpenRAM sky130 macros that ship in ``constraints/pdk/sky130_sram/`` (see its NOTICE.md).

Data (read from the macros' liberty files by :func:`read_macros`; area is the LEF footprint;
the clock pin's ``internal_power`` is the same on every ``when`` state and on rise and fall)::

    macro (sky130_sram_...)   words  bits  area (um^2)  clk internal (pJ/edge)  leakage (mW)
    1kbyte_1rw1r_32x256_8       256    32  190,712.55    9.589466               0.009516
    1kbyte_1rw1r_8x1024_8      1024     8  203,273.238   9.389093               0.009517
    2kbyte_1rw1r_32x512_8       512    32  284,538.474  13.808400               0.017726

Model (:class:`SramModel`, built by :func:`sram_model`), for one macro-sized array
(``bits <= 32`` and ``words <= 1024``, the range of the data)::

    area      = a_bit * W*B + a_word * W + a_0            (um^2)
    E_access  = e_bit * W*B + e_word * W + e_0            (pJ, rise + fall, one port)
    leakage   = l_bit * W*B + l_word * W + l_0            (W)

Each is the one plane through the three macros (three points, three coefficients): it
reproduces them exactly, so it has no residual left to estimate its own error. The plane's
``W`` term is what separates the two 8 kbit macros (more words: taller decoder and word-line
drivers); without it (``area = a*W*B + c``, least squares) the three points miss by up to
3.3% (6,280 um^2), which is the size of the effect the ``W`` term carries. Coefficients (area):
about 10.9 um^2 per bit, 16.4 um^2 per word and 96,900 um^2 of fixed periphery (two ports'
decoders, sense amplifiers, control): below about 3 kbit a flip-flop array (about 45 um^2 per
bit with its read mux, tools README) is smaller, and the model then overstates an SRAM.

Energy: the liberty gives one ``internal_power`` figure per clock pin, the same for every
``when`` state (read, write, selected or not; OpenRAM writes one analytical figure), as
rise and fall energies in the library's energy unit (voltage unit x capacitance unit: 1 V x
1 pF = 1 pJ). One access is one clock cycle of the port, a rise and a fall edge:
``E_access = E_rise + E_fall`` (19.18 pJ for 32x256). Reads and writes cost the same (the data
has one figure), and a port costs nothing on a cycle it is not accessed (its clock is assumed
gated; the liberty itself would charge every clocked cycle). Energy hardly depends on the
width at 8 kbit (8x1024: 9.39, 32x256: 9.59 pJ per edge) and grows with the array
(32x512: 13.81).

Larger or wider memories (the rule for sizes outside the data): ``ceil(B / 32)`` macros side
by side, each ``ceil(B / n)`` bits wide, times ``ceil(W / 1024)`` banks of ``ceil(W / n)`` words;
each piece priced by the plane (a 32 x 1024 piece, 32 kbit, is twice the largest macro: the
plane extrapolates there). Area and leakage count every piece; one access enables one
bank: its ``ceil(B / 32)`` pieces. Limits: one corner (TT, 1.8 V, 25 C); 1rw1r macros (a
single-port macro is smaller); no banking overhead (muxes, wiring) between pieces; the
energies are OpenRAM's analytical estimates, not measured silicon.
"""

import dataclasses
import functools
import gzip
import math
import re
from pathlib import Path

__all__ = ["LibertyGroup", "parse_liberty", "Macro", "read_macros", "SramModel",
           "SramEstimate", "sram_model", "MACRO_DIR", "MAX_BITS", "MAX_WORDS"]

_REPO = Path(__file__).resolve().parent.parent
MACRO_DIR = _REPO / "constraints" / "pdk" / "sky130_sram"
"""The shipped OpenRAM macro liberty files (gzipped)."""

MAX_BITS = 32
"""Widest piece the model prices as one array (the data's widest macro)."""

MAX_WORDS = 1024
"""Deepest piece the model prices as one array (the data's deepest macro)."""


# --- A small liberty reader: groups, simple and complex attributes ------------------------------

@dataclasses.dataclass
class LibertyGroup:
    """One liberty group ``kind (args) { ... }``.

    Members
    -------
    kind : str
        ``library``, ``cell``, ``pin``, ``internal_power``, ...
    args : list of str
        Its arguments, quotes removed (``["clk0"]``).
    attrs : dict
        Simple attributes ``name : value ;`` (strings, quotes removed; the last one wins) and
        complex attributes ``name (a, b) ;`` (a list of strings).
    groups : list of LibertyGroup
        Its subgroups, in file order.
    """

    kind: str
    args: list
    attrs: dict = dataclasses.field(default_factory=dict)
    groups: list = dataclasses.field(default_factory=list)

    def find(self, kind: str, arg: str | None = None) -> list["LibertyGroup"]:
        """Direct subgroups of ``kind`` (and first argument ``arg``, if given)."""
        return [g for g in self.groups
                if g.kind == kind and (arg is None or (g.args and g.args[0] == arg))]

    def number(self, name: str) -> float:
        """Attribute ``name`` as a float (``KeyError`` if absent)."""
        return float(self.attrs[name])


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}();:,]|[^\s{}();:,"]+')


_PUNCTUATION = frozenset("{}();:,")


def _unquote(token: str) -> str:
    return token[1:-1] if token.startswith('"') else token


def parse_liberty(text: str) -> LibertyGroup:
    """Parse liberty ``text`` into its top group (``library``).

    Enough of the format for macro data: comments, line continuations, quoted strings,
    groups, simple and complex attributes. Table values stay strings (``"9.589466e+00"``).

    Raises
    ------
    ValueError
        Unbalanced braces or a statement it cannot read (with the token position).
    """
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S).replace("\\\n", " ")
    tokens = _TOKEN.findall(text)
    root = LibertyGroup("", [])
    stack = [root]
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "}":
            if len(stack) == 1:
                raise ValueError(f"liberty: unbalanced `}}` at token {i}")
            stack.pop()
            i += 1
            continue
        if token == ";":
            i += 1
            continue
        name = token
        if i + 1 < len(tokens) and tokens[i + 1] == ":":
            # A simple attribute: one value; its `;` is optional.
            if i + 2 >= len(tokens) or tokens[i + 2] in _PUNCTUATION:
                raise ValueError(f"liberty: attribute `{name}` has no value (token {i})")
            stack[-1].attrs[name] = _unquote(tokens[i + 2])
            i += 4 if i + 3 < len(tokens) and tokens[i + 3] == ";" else 3
            continue
        if i + 1 < len(tokens) and tokens[i + 1] == "(":
            j = i + 2
            args = []
            while j < len(tokens) and tokens[j] != ")":
                if tokens[j] != ",":
                    args.append(_unquote(tokens[j]))
                j += 1
            j += 1
            if j < len(tokens) and tokens[j] == "{":
                group = LibertyGroup(name, args)
                stack[-1].groups.append(group)
                stack.append(group)
                i = j + 1
            else:
                stack[-1].attrs[name] = args
                i = j + 1 if j < len(tokens) and tokens[j] == ";" else j
            continue
        raise ValueError(f"liberty: cannot read `{token}` at token {i}")
    if len(stack) != 1:
        raise ValueError(f"liberty: {len(stack) - 1} unclosed group(s)")
    libraries = root.find("library")
    if len(libraries) != 1:
        raise ValueError("liberty: expected one `library` group")
    return libraries[0]


_UNIT = re.compile(r"^\s*([\d.eE+-]+)\s*([a-zA-Z]+)\s*$")
_SCALE = {"f": 1e-15, "p": 1e-12, "n": 1e-9, "u": 1e-6, "m": 1e-3, "": 1.0, "k": 1e3}


def _unit(value: str, base: str) -> float:
    """``"1mW"`` with base ``W`` -> 1e-3 (the unit in SI)."""
    match = _UNIT.match(value)
    if not match or not match.group(2).lower().endswith(base.lower()):
        raise ValueError(f"liberty: cannot read the unit {value!r} (expected a {base} unit)")
    prefix = match.group(2)[:-len(base)]
    if prefix not in _SCALE:
        raise ValueError(f"liberty: unknown unit prefix in {value!r}")
    return float(match.group(1)) * _SCALE[prefix]


# --- The macros -----------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Macro:
    """One SRAM macro as its liberty describes it.

    Members
    -------
    name : str
        Cell name.
    words, bits : int
        ``2 ** address_width`` and ``word_width`` of its ``memory`` group.
    area_um2 : float
        Liberty ``area`` (its LEF footprint, um^2).
    leakage_w : float
        ``cell_leakage_power`` in watts.
    clock_energy_pj : dict
        Clock pin -> ``(rise, fall)`` internal energy per edge in pJ, the largest over the
        pin's ``when`` states (OpenRAM writes one figure for all of them).
    """

    name: str
    words: int
    bits: int
    area_um2: float
    leakage_w: float
    clock_energy_pj: dict

    @property
    def access_pj(self) -> float:
        """Energy of one access on port 0: a rise and a fall edge of its clock."""
        rise, fall = self.clock_energy_pj["clk0"]
        return rise + fall


def _macro(library: LibertyGroup) -> Macro:
    leak_unit = _unit(library.attrs["leakage_power_unit"], "W")
    volt = _unit(library.attrs["voltage_unit"], "V")
    cap_value, cap_unit = library.attrs["capacitive_load_unit"]
    cap = float(cap_value) * _SCALE[cap_unit.lower()[:-1] if len(cap_unit) > 1 else ""]
    energy_pj = volt * cap / 1e-12   # liberty internal energy unit: voltage x capacitance
    (cell,) = library.find("cell")
    (memory,) = cell.find("memory")
    clocks = {}
    for pin in cell.find("pin"):
        if pin.attrs.get("clock") != "true":
            continue
        rises, falls = [], []
        for power in pin.find("internal_power"):
            for kind, into in (("rise_power", rises), ("fall_power", falls)):
                for table in power.find(kind):
                    into.extend(float(v) for row in table.attrs["values"]
                                for v in row.split(","))
        if rises or falls:
            clocks[pin.args[0]] = (max(rises) * energy_pj, max(falls) * energy_pj)
    return Macro(name=cell.args[0], words=2 ** int(memory.attrs["address_width"]),
                 bits=int(memory.attrs["word_width"]), area_um2=cell.number("area"),
                 leakage_w=cell.number("cell_leakage_power") * leak_unit,
                 clock_energy_pj=clocks)


def read_liberty_file(path: Path) -> LibertyGroup:
    """Parse a liberty file, gzipped (``.gz``) or not."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return parse_liberty(f.read())


@functools.cache
def read_macros(folder: Path = MACRO_DIR) -> tuple[Macro, ...]:
    """Every macro of the ``*.lib.gz`` / ``*.lib`` files in ``folder``, smallest first."""
    files = sorted(Path(folder).glob("*.lib.gz")) + sorted(Path(folder).glob("*.lib"))
    if not files:
        raise FileNotFoundError(f"no SRAM macro liberty files in {folder}")
    macros = [_macro(read_liberty_file(p)) for p in files]
    return tuple(sorted(macros, key=lambda m: (m.words * m.bits, m.words)))


# --- The model ------------------------------------------------------------------------------------

def _plane(points: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    """(c_bit, c_word, c_0) of ``value = c_bit * bits_total + c_word * words + c_0`` through
    three (bits_total, words, value) points (Cramer's rule)."""
    (x1, y1, v1), (x2, y2, v2), (x3, y3, v3) = points
    det = x1 * (y2 - y3) - y1 * (x2 - x3) + (x2 * y3 - x3 * y2)
    if det == 0:
        raise ValueError("the SRAM data points do not fix a plane (two share a size)")
    a = (v1 * (y2 - y3) - y1 * (v2 - v3) + (v2 * y3 - v3 * y2)) / det
    b = (x1 * (v2 - v3) - v1 * (x2 - x3) + (x2 * v3 - x3 * v2)) / det
    c = (x1 * (y2 * v3 - y3 * v2) - y1 * (x2 * v3 - x3 * v2) + v1 * (x2 * y3 - x3 * y2)) / det
    return a, b, c


@dataclasses.dataclass(frozen=True)
class SramEstimate:
    """What a memory of ``words`` x ``bits`` costs.

    Members
    -------
    words, bits : int
        The memory asked for.
    pieces : tuple of int
        ``(banks, columns)``: arrays of ``piece_words`` x ``piece_bits`` it is built from.
    piece_words, piece_bits : int
        One piece's size.
    area_um2 : float
        All pieces.
    read_pj, write_pj : float
        One access (one bank's pieces, one port, one clock cycle); equal (one figure).
    leakage_w : float
        All pieces.
    """

    words: int
    bits: int
    pieces: tuple
    piece_words: int
    piece_bits: int
    area_um2: float
    read_pj: float
    write_pj: float
    leakage_w: float


@dataclasses.dataclass(frozen=True)
class SramModel:
    """Area, access energy and leakage planes fitted through the macros (see the module doc).

    Members
    -------
    macros : tuple of Macro
        The data points.
    area, access, leakage : tuple of float
        ``(per bit, per word, fixed)`` of area (um^2), access energy (pJ, rise + fall) and
        leakage (W).
    """

    macros: tuple
    area: tuple
    access: tuple
    leakage: tuple

    @staticmethod
    def _at(plane, words, bits):
        return plane[0] * words * bits + plane[1] * words + plane[2]

    def estimate(self, words: int, bits: int) -> SramEstimate:
        """Price a ``words`` x ``bits`` memory (the rule in the module doc).

        Raises
        ------
        TypeError, ValueError
            ``words`` or ``bits`` not a positive integer.
        """
        for name, value in (("words", words), ("bits", bits)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"`{name}` must be an integer, not {value!r}")
            if value < 1:
                raise ValueError(f"`{name}` must be at least 1, not {value}")
        columns, banks = math.ceil(bits / MAX_BITS), math.ceil(words / MAX_WORDS)
        piece_bits, piece_words = math.ceil(bits / columns), math.ceil(words / banks)
        n = columns * banks
        return SramEstimate(
            words=words, bits=bits, pieces=(banks, columns), piece_words=piece_words,
            piece_bits=piece_bits,
            area_um2=round(n * self._at(self.area, piece_words, piece_bits), 3),
            read_pj=round(columns * self._at(self.access, piece_words, piece_bits), 6),
            write_pj=round(columns * self._at(self.access, piece_words, piece_bits), 6),
            leakage_w=n * self._at(self.leakage, piece_words, piece_bits))


@functools.cache
def sram_model(folder: Path = MACRO_DIR) -> SramModel:
    """The model fitted through the three macros of ``folder`` (default: the shipped ones).

    Raises
    ------
    FileNotFoundError
        No macro files; ``ValueError``: not exactly three macros, or two of the same size.
    """
    macros = read_macros(folder)
    if len(macros) != 3:
        raise ValueError(f"the SRAM model needs three macros, found {len(macros)} in {folder}")

    def plane(value):
        return _plane([(m.words * m.bits, m.words, value(m)) for m in macros])

    return SramModel(macros=macros, area=plane(lambda m: m.area_um2),
                     access=plane(lambda m: m.access_pj), leakage=plane(lambda m: m.leakage_w))
