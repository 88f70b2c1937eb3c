"""The simple reference of SCNN's crossbar cycle model: one model per PE, pair by pair, in plain
Python, cycle by cycle with the Cartesian stages in front. ``sim.scnn.model_cycles`` uses the
vectorized ``_Crossbars``; the tests check that it gives the same cycles and conflict stalls as
this reference (``model_cycles(program, ReferenceCrossbars)``)."""

import numpy as np

__all__ = ["CrossbarModel", "PipelineModel", "ReferenceCrossbars"]


class CrossbarModel:
    """The state of :class:`~sparsegen.hw.scnn._Crossbar` (two-pair window) and its grant
    rule; :class:`PipelineModel` steps it."""

    def __init__(self):
        self.old, self.new = [], []     # pending banks of the older and newer pair
        self.now = 0                    # the cycle the registers hold these at its start
        self.stalls = 0

    @staticmethod
    def _grant(old, new):
        used, old_left, new_left = set(), [], []
        for pending, left in ((old, old_left), (new, new_left)):
            for b in pending:
                if b in used:
                    left.append(b)
                else:
                    used.add(b)
        return old_left, new_left


class PipelineModel:
    """Cycle-by-cycle model of a PE's Cartesian stages (:class:`~sparsegen.hw.scnn._Cartesian`:
    issue, row stage, product stage, advancing together) in front of its crossbar, written
    from the RTL's rules, not from the closed form of ``sim.scnn._Crossbars``: every cycle the
    crossbar grants; ``advance`` when the product stage is empty or the crossbar loads its
    pair; then the row stage's pair moves into the product stage and a pair offered in this
    cycle issues into the row stage."""

    def __init__(self):
        self.xbar = CrossbarModel()
        self.row = self.product = None      # banks of the pair in each stage, None: empty

    def _empty(self) -> bool:
        x = self.xbar
        return self.row is None and self.product is None and not x.old and not x.new

    def _cycle(self, offer) -> bool:
        """One cycle with ``offer`` (a pair's banks, or None); returns whether it issued."""
        x = self.xbar
        old_left, new_left = x._grant(x.old, x.new)
        stall = bool(old_left)
        fire = self.product is not None and not stall
        advance = self.product is None or not stall
        if stall:
            x.stalls += 1
            x.old, x.new = old_left, new_left
        else:
            x.old, x.new = new_left, (self.product if fire else [])
        issued = offer is not None and advance
        if advance:
            self.product, self.row = self.row, (offer if issued else None)
        x.now += 1
        return issued

    def issue(self, banks: list, start: int) -> int:
        """Issue a pair at the first cycle >= ``start`` that allows it; returns that cycle."""
        if self._empty() and self.xbar.now < start:
            self.xbar.now = start
        while not self._cycle(banks if self.xbar.now >= start else None):
            pass
        return self.xbar.now - 1

    def drain(self) -> int:
        """Run without issues until empty; returns the first cycle from which it is idle (the
        stages empty and the crossbar emptying in it)."""
        x = self.xbar
        if self._empty():
            return x.now - 1
        while True:
            old_left, new_left = x._grant(x.old, x.new)
            idle = self.row is None and self.product is None and not old_left and not new_left
            self._cycle(None)
            if idle:
                return x.now - 1


class ReferenceCrossbars:
    """The PEs' Cartesian stages and crossbars as one :class:`PipelineModel` per PE, pair by
    pair: the simple reference that :class:`sparsegen.sim.scnn._Crossbars` is tested equal to."""

    def __init__(self, npes: int, banks: int):
        self.pes = [PipelineModel() for _ in range(npes)]

    def entry(self, work, key, start: int) -> list:
        """Issue every pair of a weight entry taken at ``start - WEIGHT_ENTRY_DELAY``;
        returns each PE's pop cycle (its last pair's issue)."""
        pops = []
        for p, pairs in enumerate(work[key]):
            issue = -1                  # no pair (a column group the word is not for)
            for banks in pairs:
                issue = self.pes[p].issue(banks, start)
            pops.append(issue)
        return np.array(pops)

    def idle(self) -> int:
        """The first cycle at which every PE's product stage and crossbar are empty."""
        return max(pe.drain() for pe in self.pes)

    @property
    def stalls(self) -> int:
        return sum(pe.xbar.stalls for pe in self.pes)
