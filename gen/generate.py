"""Component -> deterministic Verilog plus ``<top>.json`` metadata.

The JSON is what simulation and synthesis read instead of guessing: the design and its config,
the port list derived from the component's signature, and for every port whose shape is a
``data.Layout`` its field tree (offsets, widths, signedness), so a testbench can pack and unpack
payload bits without importing Amaranth.

Blocks that repeat (the cells of a systolic array, S2TA's per-row DAPs) are registered through
:func:`~sparsegen.hw.hier.shared`; :func:`generate` converts the design with a
:class:`SharedModules` platform, so each distinct block is elaborated and emitted once, as a
module of its own, and instantiated wherever it occurs.
"""

import dataclasses
import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from amaranth import ClockSignal, Const, ResetSignal, Shape, Value
from amaranth.back import rtlil, verilog
from amaranth.hdl import Instance
from amaranth.hdl._ir import PortDirection  # what convert() takes in `ports=`; not re-exported
from amaranth.lib import data, wiring

from ..hw.hier import ModuleSharing
from . import __version__, children
from .design import Design
from .errors import UsageError

__all__ = ["Generated", "SharedModules", "generate", "describe_shape", "write_outputs",
           "check_output_folder"]

_RTLIL_MODULE = re.compile(r"^module \\(\S+)$", re.M)
# Port declarations of Amaranth's RTLIL: `wire width 1 input 2  \clk`.
_RTLIL_PORT = re.compile(r"^\s*wire width \d+ (?:input|output|inout) \d+\s+(?:signed )?\\(\S+)$",
                         re.M)


class SharedModules(ModuleSharing):
    """The platform :func:`generate` converts with: one module per distinct shared block.

    The first component met for a (class, signature, key) triple is converted to RTLIL on the
    spot, with this object as its platform (so blocks shared inside it are shared too), as a
    module named ``<prefix>.<name>``; a base name already taken gets ``_2``, ``_3``... in the
    order met, so names are deterministic. Every occurrence, the first included, becomes an
    ``Instance`` of that module wired to the component's ports; the other components are never
    elaborated. :func:`generate` turns the top's RTLIL and :attr:`rtlil` into Verilog in one
    Yosys run (a run costs about half a second to start).

    Parameters
    ----------
    prefix : str
        Start of every module name: the top's name, as Amaranth starts its submodules' names.

    Members
    -------
    rtlil : list of str
        The shared modules' RTLIL, in the order first met.
    names : list of str
        Their module names, in the same order.
    """

    def __init__(self, prefix: str):
        self._prefix = prefix
        self._modules: dict = {}            # (class, signature, key) -> (name, clock ports)
        self.rtlil: list[str] = []
        self.names: list[str] = []

    def instance(self, component, *, name, key):
        ports = _component_ports(component)
        ident = (type(component), repr(component.signature), key)
        if ident not in self._modules:
            module = self._unique(f"{self._prefix}.{name}")
            text = rtlil.convert(component, name=module, platform=self, ports=ports,
                                 emit_src=False)
            clocks = [p for p in _RTLIL_PORT.findall(_rtlil_module(text, module))
                      if p not in ports]
            self._modules[ident] = (module, clocks)
            self.rtlil.append(text)
            self.names.append(module)
        module, clocks = self._modules[ident]
        # The Instance stands for the component, which is otherwise never elaborated: tell
        # Amaranth it is used (as Amaranth's own Memory does for ports a platform replaces).
        component._MustUse__used = True
        connections = {("i_" if direction == PortDirection.Input else "o_") + port: value
                       for port, (value, direction) in ports.items()}
        for port in clocks:
            connections[f"i_{port}"] = _domain_signal(port, module)
        return Instance(module, **connections)

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self.names:
            n += 1
            name = f"{base}_{n}"
        return name


def _rtlil_module(text: str, name: str) -> str:
    """The body of module ``name`` in RTLIL ``text`` (which also holds its submodules, whose
    ports are not the module's)."""
    start = text.index(f"module \\{name}\n")
    return text[start:text.index("\nend\n", start)]


def _component_ports(component) -> dict:
    """Port name -> (signal, direction) of a component, as ``verilog.convert`` names them.

    Constant members (the ``ready`` of an ``always_ready`` stream) and zero-width ones are not
    ports.
    """
    ports = {}
    for path, member, value in component.signature.flatten(component):
        value = Value.cast(value)
        if isinstance(value, Const) or len(value) == 0:
            continue
        direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
        ports["__".join(map(str, path))] = (value, direction)
    return ports


def _domain_signal(port: str, module: str):
    """The clock or reset a module port that is not a signature member stands for:
    ``clk``/``rst`` of ``sync``, ``<domain>_clk``/``<domain>_rst`` of another domain."""
    domain, _, what = port.rpartition("_")
    if what == "clk":
        return ClockSignal(domain or "sync")
    if what == "rst":
        return ResetSignal(domain or "sync")
    raise ValueError(f"shared module `{module}` has port `{port}`, which is neither a member "
                     f"of its signature nor a clock or reset")


@dataclasses.dataclass(frozen=True)
class Generated:
    """A generated design: Verilog text and its metadata."""

    design: str
    top: str
    verilog: str
    metadata: dict

    @property
    def digest(self) -> str:
        """sha256 of the Verilog: the key of simulator builds and synthesis caches."""
        return hashlib.sha256(self.verilog.encode()).hexdigest()

    def metadata_json(self) -> str:
        return json.dumps(self.metadata, indent=2, sort_keys=False) + "\n"

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write ``<top>.v`` and ``<top>.json`` into ``out_dir``; both or neither."""
        return write_outputs(Path(out_dir), {
            f"{self.top}.v": self.verilog,
            f"{self.top}.json": self.metadata_json(),
        })


def describe_shape(shape) -> dict:
    """JSON description of a port shape: an integer shape or a (nested) data layout.

    ``{"kind": "int", "width": 8, "signed": true}``,
    ``{"kind": "struct", "width": 17, "fields": {"a": {"offset": 0, "shape": {...}}, ...}}``,
    ``{"kind": "array", "width": 32, "length": 4, "elem": {...}}``; array element ``i`` sits at
    offset ``i * elem.width`` (element 0 in the least significant bits).
    """
    if isinstance(shape, data.ArrayLayout):
        return {"kind": "array", "width": shape.size, "length": shape.length,
                "elem": describe_shape(shape.elem_shape)}
    if isinstance(shape, data.Layout):
        return {"kind": "struct", "width": shape.size, "fields": {
            name: {"offset": field.offset, "shape": describe_shape(field.shape)}
            for name, field in shape}}
    shape = Shape.cast(shape)
    return {"kind": "int", "width": shape.width, "signed": shape.signed}


def _port_layouts(signature: wiring.Signature) -> dict:
    layouts = {}
    for path, member in signature.members.flatten():
        if member.is_port:
            layouts["__".join(map(str, path))] = describe_shape(member.shape)
    return layouts


def generate(design: Design, config) -> Generated:
    """Elaborate ``design`` for ``config`` and convert it to Verilog.

    The Verilog carries no source locations or absolute paths, so the same config gives
    byte-identical output on every machine. Results are remembered per (design, config) within
    a process (a layer run, a bench or a test asks for the same design many times; elaborating
    a large array takes seconds); each call returns its own copy of the metadata.
    """
    text, metadata = _generate(design, config)
    return Generated(design.name, design.top, text, json.loads(metadata))


@functools.lru_cache(maxsize=16)
def _generate(design: Design, config) -> tuple[str, str]:
    """The Verilog and the metadata (as JSON text) of ``design`` for ``config``."""
    block = design.component(config)
    library = SharedModules(design.top)
    top = rtlil.convert(block, name=design.top, platform=library, emit_src=False)
    clash = set(_RTLIL_MODULE.findall(top)) & set(library.names)
    if clash:
        raise RuntimeError(f"shared module names {sorted(clash)} are also submodule paths of "
                           f"`{design.top}`: give the shared blocks other names")
    # verilog.convert() is rtlil.convert() and this call; it is made here once for the top and
    # every shared module together.
    text = verilog._convert_rtlil_text("".join([top, *library.rtlil]),
                                       strip_internal_attrs=True)
    metadata = {
        "generator": f"sparsegen {__version__}",
        "design": design.name,
        "top": design.top,
        "config": config.as_dict(),
        "latency": getattr(block, "LATENCY", None),
        "ports": block.metadata.as_json()["interface"]["members"],
        "layouts": _port_layouts(block.signature),
        "verilog_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    return text, json.dumps(metadata)


def check_output_folder(out_dir: Path, what: str = "output folder") -> None:
    """Check, before any work, that :func:`write_outputs` will be able to write into
    ``out_dir``: it is a writable folder, or it does not exist yet and its nearest existing
    ancestor is a writable folder. Nothing is created.

    Raises
    ------
    UsageError
        ``out_dir`` is a file, or the folder (or the one it would be created in) is not
        writable; one line naming it.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"{what} {out_dir} is a file, not a folder")
    existing = out_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"cannot create {what} {out_dir}: {existing} is a file")
    try:        # a real probe: os.access says yes to root, and knows nothing of read-only mounts
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as exc:
        where = "" if existing == out_dir else f" ({existing}: {exc.strerror})"
        raise UsageError(f"{what} {out_dir} is not writable{where}") from None


def write_outputs(out_dir: Path, files: dict[str, str | bytes]) -> tuple[Path, ...]:
    """Write files (text or bytes) into ``out_dir`` atomically: every file appears complete,
    or none.

    Each file is written to a temporary name in the same folder and renamed into place only
    after all of them were written, so a failure leaves no partial output behind.

    Raises
    ------
    UsageError
        The folder cannot be created or written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {out_dir}: {exc.strerror}") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise UsageError(f"output folder {out_dir} is not writable")
    staged = []
    with children.critical():       # Ctrl-C unwinds through here, cleaning up, not past it
        try:
            for name, text in files.items():
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
                staged.append((Path(tmp), out_dir / name))
                with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
                    f.write(text)
                os.chmod(tmp, 0o644)        # mkstemp's 0600 is for the staging only
            for tmp, final in staged:
                os.replace(tmp, final)
        except OSError as exc:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise UsageError(f"cannot write into {out_dir}: {exc.strerror}") from None
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
    return tuple(final for _, final in staged)
