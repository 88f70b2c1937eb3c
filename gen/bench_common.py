"""Figures every benchmark derives the same way (formula columns, labelled as such)."""

__all__ = ["at_fmax"]


def at_fmax(macs: int, cycles: int, fmax_mhz: float | None, area_um2: float):
    """(time in us, dense-equivalent GOPS per mm^2) of a layer run at the design's own fmax:
    time = cycles / fmax, GOPS/mm^2 = (MACs x 2 / time) / area; both ``None`` without
    timing (no OpenSTA)."""
    if not fmax_mhz:
        return None, None
    time_us = cycles / fmax_mhz
    return time_us, (2 * macs / (time_us * 1e3)) / (area_um2 * 1e-6)
