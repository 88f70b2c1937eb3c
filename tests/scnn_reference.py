"""The simple reference of SCNN's crossbar cycle model: one model per PE, pair by pair, in plain
Python. ``sim.scnn.model_cycles`` uses the vectorized ``_Crossbars``; the tests check that it
gives the same cycles and conflict stalls as this reference (``model_cycles(program,
ReferenceCrossbars)``)."""

import numpy as np

__all__ = ["CrossbarModel", "ReferenceCrossbars"]


class CrossbarModel:
    """Cycle-by-cycle model of :class:`~sparsegen.hw.scnn._Crossbar` (two-pair window)."""

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

    def issue(self, banks: list, ready: int) -> int:
        """Load a pair at the first cycle >= ``ready`` that allows it; returns that cycle."""
        while True:
            if not self.old and not self.new and self.now < ready:
                self.now = ready
            old_left, new_left = self._grant(self.old, self.new)
            cycle = self.now
            self.now += 1
            if old_left:
                self.stalls += 1
                self.old, self.new = old_left, new_left
            elif cycle >= ready:
                self.old, self.new = new_left, banks
                return cycle
            else:
                self.old, self.new = new_left, []

    def drain(self) -> int:
        """Run without loads until empty; returns the first cycle from which it is idle."""
        while self.old or self.new:
            old_left, new_left = self._grant(self.old, self.new)
            self.now += 1
            if old_left:
                self.stalls += 1
                self.old, self.new = old_left, new_left
            else:
                self.old, self.new = new_left, []
        return self.now - 1


class ReferenceCrossbars:
    """The PEs' crossbars as one :class:`CrossbarModel` per PE, pair by pair: the simple
    reference that :class:`sparsegen.sim.scnn._Crossbars` is tested equal to."""

    def __init__(self, npes: int, banks: int):
        self.xbars = [CrossbarModel() for _ in range(npes)]
        self.loaded = [-1] * npes       # cycle the PE's last pair entered the crossbar

    def entry(self, work, key, start: int) -> list:
        """Issue every pair of a weight entry taken at ``start - WEIGHT_ENTRY_DELAY``;
        returns each PE's pop cycle (its last pair's issue)."""
        pops = []
        for p, pairs in enumerate(work[key]):
            for banks in pairs:
                issue = max(start, self.loaded[p])
                self.loaded[p] = self.xbars[p].issue(banks, issue + 1)
            pops.append(issue)
        return np.array(pops)

    def idle(self) -> int:
        """The first cycle at which every PE's product stage and crossbar are empty."""
        return max(max(x.drain(), loaded + 1) for x, loaded in zip(self.xbars, self.loaded))

    @property
    def stalls(self) -> int:
        return sum(x.stalls for x in self.xbars)
