"""Repeated blocks emitted once: the hook through which an array shares one Verilog module among
all its identical cells.

Amaranth elaborates every submodule and emits it as a module of its own, even when an array
holds R x C copies of one cell: a 32 x 32 S2TA array is elaborated, converted and synthesized
1,024 times over. A block that repeats is therefore registered through :func:`shared`::

    m.submodules[f"cell_{r}_{c}"] = shared(platform, cell, name="cell", key=cell_key)

* With any other platform (``None`` in the Amaranth simulator, which the tests use) ``shared``
  returns the component itself: simulation keeps real, independent cells.
* With a :class:`ModuleSharing` platform (``gen.generate`` passes one when it converts a
  design to Verilog) it returns what the platform makes of it: an ``Instance`` of one module
  per distinct ``key``, built from the first component seen with that key. The others are
  never elaborated; only their ports (the interface the parent already wired) are kept.

This is Amaranth's own way of swapping an implementation at elaboration time (a platform's
``get_memory`` or ``get_ff_sync`` replaces a ``Memory`` or an ``FFSynchronizer``), applied from
the parent's side so that any component can be shared without changing it (``ActDBB``, SCNN's
PEs). The alternative, deduplicating structurally identical modules in Amaranth's RTLIL or
Verilog output, would give the same text but still elaborate, lower and emit every copy, which
is where the time and memory of large arrays go.

``key`` is the caller's promise: two components of the same class given equal keys elaborate to
the same hardware. It must cover every constructor argument that changes the netlist (a config,
a cell kind, a side-payload shape); the class and the signature are added to it by the
platform, so components with different ports never share a module.
"""

from amaranth.hdl import Elaboratable
from amaranth.lib import wiring

__all__ = ["ModuleSharing", "shared"]


class ModuleSharing:
    """A platform that emits each distinct shared block once (see the module docs).

    Subclasses implement :meth:`instance`; :func:`shared` calls it.
    """

    def instance(self, component: wiring.Component, *, name: str, key) -> Elaboratable:
        """What to elaborate in place of ``component``: typically an ``Instance`` of the one
        module built for ``(type(component), component.signature, key)``, named after
        ``name``, with ``component``'s ports connected to it."""
        raise NotImplementedError


def shared(platform, component: wiring.Component, *, name: str, key) -> Elaboratable:
    """``component``, or an instance of its shared module when ``platform`` shares modules.

    Parameters
    ----------
    platform
        The platform passed to the parent's ``elaborate``.
    component : wiring.Component
        The block, constructed and wired by the parent like any submodule.
    name : str
        Base name of the shared module (the platform makes it unique), e.g. ``"cell"``.
    key : hashable
        Determines the block's hardware together with its class (see the module docs).
    """
    if isinstance(platform, ModuleSharing):
        return platform.instance(component, name=name, key=key)
    return component
