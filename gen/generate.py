"""Component -> deterministic Verilog plus ``<top>.json`` metadata.

The JSON is what simulation and synthesis read instead of guessing: the design and its config,
the port list derived from the component's signature, and for every port whose shape is a
``data.Layout`` its field tree (offsets, widths, signedness), so a testbench can pack and unpack
payload bits without importing Amaranth.
"""

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

from amaranth import Shape
from amaranth.back import verilog
from amaranth.lib import data, wiring

from . import __version__
from .errors import UsageError
from .registry import Design

__all__ = ["Generated", "generate", "describe_shape", "write_outputs"]


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
    byte-identical output on every machine.
    """
    block = design.component(config)
    text = verilog.convert(block, name=design.top, emit_src=False, strip_internal_attrs=True)
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
    return Generated(design.name, design.top, text, metadata)


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
    return tuple(final for _, final in staged)
