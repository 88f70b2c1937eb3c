"""Declarative, validated parameters for block configs.

Every block family has one frozen dataclass config. Its fields are declared with :func:`param`,
which records the default, the allowed range and a one-line help text in the field's metadata.
:class:`Config` validates all fields from that metadata in ``__post_init__``, so the hardware,
the command line (``sparsegen list``, ``-p k=v``) and the tests share one definition of what a
legal value is, and one wording of the error.
"""

import dataclasses
from typing import Any

__all__ = ["param", "Config", "ParamSpec", "check_config"]


@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """What a config field accepts.

    ``lo``/``hi`` are inclusive bounds; either may name another (integer) field of the same
    config, whose value then bounds this one (``nnz`` is at most ``block_size``).
    """

    name: str
    type: type
    default: Any
    help: str
    lo: int | str | None = None
    hi: int | str | None = None
    pow2: bool = False
    choices: tuple | None = None
    default_from: str | None = None

    @property
    def default_text(self) -> str:
        """The default as ``sparsegen list`` shows it."""
        if self.default_from is not None:
            return f"= {self.default_from}"
        return str(self.default).lower() if self.type is bool else str(self.default)

    def describe_range(self) -> str:
        """Human-readable range, e.g. ``2..32, power of two`` or ``w, a, aw``."""
        if self.type is bool:
            return "true/false"
        if self.choices is not None:
            return ", ".join(str(c) for c in self.choices)
        if self.lo is None and self.hi is None:
            return "text" if self.type is str else "any"
        text = f"{self.lo}..{'' if self.hi is None else self.hi}"
        return text + (", power of two" if self.pow2 else "")


def param(default, *, help: str, lo=None, hi=None, pow2=False, choices=None,
          default_from: str | None = None):
    """Declare a config field with its default, range and help text.

    With ``default_from``, the default is ``None`` and means "the value of that field"
    (``nnz_max`` defaults to ``block_size``).
    """
    return dataclasses.field(default=default, metadata={"sparsegen": dict(
        help=help, lo=lo, hi=hi, pow2=pow2, choices=None if choices is None else tuple(choices),
        default_from=default_from)})


class Config:
    """Base class of the frozen dataclass configs: validates every :func:`param` field.

    Subclasses may add cross-field checks in :meth:`_check`, run after the per-field ones.

    Raises
    ------
    TypeError
        A field has the wrong type (``bool`` is not accepted where an ``int`` is expected).
    ValueError
        A field is out of range, not a power of two, or not one of its choices.
    """

    def __post_init__(self):
        specs = self.param_specs()
        for spec in specs:
            if spec.default_from is not None and getattr(self, spec.name) is None:
                # Frozen dataclass: fill the derived default the way dataclasses do.
                object.__setattr__(self, spec.name, getattr(self, spec.default_from))
        sizes = [s for s in specs if s.type is int and s.choices is None]
        for spec in specs:
            if spec not in sizes:       # choices and flags first: they decide what is unused
                self._check_field(spec)
        # A size the config ignores (``nnz_w`` of a dense-weight variant) keeps its type check
        # but not its range: its default need not fit a config that has no use for it.
        unused = self.unused_params()
        for spec in sizes:
            self._check_field(spec, ranges=spec.name not in unused)
        self._check()

    def _check(self):
        pass

    @classmethod
    def param_specs(cls) -> tuple[ParamSpec, ...]:
        """The :class:`ParamSpec` of every field, in declaration order."""
        specs = []
        for f in dataclasses.fields(cls):
            meta = f.metadata.get("sparsegen")
            if meta is None:
                continue
            ftype = f.type if isinstance(f.type, type) else {"int": int, "bool": bool,
                                                             "str": str}[f.type]
            specs.append(ParamSpec(name=f.name, type=ftype, default=f.default, **meta))
        return tuple(specs)

    def _bound(self, bound):
        if isinstance(bound, str):
            return getattr(self, bound), f" and `{bound}` ({getattr(self, bound)})"
        return bound, f" and {bound}"

    def _check_field(self, spec: ParamSpec, ranges: bool = True):
        value = getattr(self, spec.name)
        # bool is a subclass of int; a flag passed where a size belongs is a mistake.
        if not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            raise TypeError(f"`{spec.name}` must be {_article(spec.type)}, "
                            f"not {type(value).__name__} {value!r}")
        if not ranges:
            return
        if spec.choices is not None and value not in spec.choices:
            choices = ", ".join(str(c) for c in spec.choices)
            raise ValueError(f"`{spec.name}` must be one of {choices}, not {value!r}")
        if spec.type is int:
            lo = self._bound(spec.lo)[0] if spec.lo is not None else None
            hi = self._bound(spec.hi)[0] if spec.hi is not None else None
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                lo_text = f"`{spec.lo}` ({lo})" if isinstance(spec.lo, str) else str(lo)
                hi_text = f"`{spec.hi}` ({hi})" if isinstance(spec.hi, str) else str(hi)
                raise ValueError(f"`{spec.name}` must be between {lo_text} and {hi_text}, "
                                 f"not {value}")
            if spec.pow2 and value & (value - 1):
                raise ValueError(f"`{spec.name}` must be a power of two, not {value}")

    def unused_params(self) -> dict[str, str]:
        """The parameters this config ignores, each with the reason (``nnz_a`` in a
        weight-only variant, say). The command line refuses such a parameter when it is given
        explicitly, since the user meant it to change something. None by default.
        """
        return {}

    def as_dict(self) -> dict:
        """The field values, for JSON metadata and cache keys."""
        return dataclasses.asdict(self)


def _article(t: type) -> str:
    return {int: "an int", bool: "a bool", str: "a str"}.get(t, t.__name__)


def check_config(component, config, expected: type) -> None:
    """Raise ``TypeError`` unless ``config`` is an ``expected``; for component constructors.

    The half-built component is marked as deliberately unused, so Amaranth does not also warn
    that it was "created but never used".
    """
    if not isinstance(config, expected):
        component._MustUse__silence = True
        raise TypeError(f"`config` must be of type {expected.__name__}, "
                        f"not {type(config).__name__}")
