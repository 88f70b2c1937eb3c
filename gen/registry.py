"""The catalogue of designs: one declaration per design says everything the layers above
``hw/`` need.

A design is anything ``sparsegen gen`` can emit: a config class, a component and a summary
(:class:`~sparsegen.gen.design.Design`). The arrays that run whole layers also name their
host (:class:`~sparsegen.gen.design.Host`, from a host module of ``sim/``): how ``sim`` runs them
on RTL and on the models, their cycle model and ideal speedup, and their run options. Their
parameters are the fields of the config dataclass (see :mod:`sparsegen.hw.params`), so listing,
parsing and validating them needs no per-design code here.

Adding a design: one ``hw/`` module (config + component), one host in ``sim/`` if it runs
layers, and one entry below (README, "Adding a design").

This module is the app layer's (it imports ``sim/``); ``gen.design``, ``gen.generate`` and
``gen.synth`` are the build layer below ``sim/``.
"""

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path

from ..hw import actdbb, highlight, hss, pe, s2ta, scnn, sod
from ..hw.params import Config, ParamSpec
from ..sim import highlight as highlight_host
from ..sim import layer as gemm_hosts
from ..sim import scnn as scnn_host
from ..sim import sod as sod_host
from .design import Design, Host
from .errors import UsageError

__all__ = ["Design", "Host", "DESIGNS", "get_design", "read_toml", "parse_params",
           "make_config", "refuse_unused"]


DESIGNS: dict[str, Design] = {d.name: d for d in [
    Design("dense-pe", pe.DensePEConfig, pe.DensePE,
           "dense dot-product PE: BZ multipliers, adder tree, accumulator (optional ZVCG)"),
    Design("dbb-pe", pe.DBBPEConfig, pe.WeightMuxPE,
           "S2TA weight-mux PE: DBB(BZ, NNZ) weights, NNZ BZ:1 muxes and multipliers"),
    Design("act-dbb", actdbb.ActDBBConfig, actdbb.ActDBB,
           "S2TA dynamic activation DBB unit (DAP): top-nnz_a of each block, mask + values"),
    Design("dense-array", s2ta.DenseArrayConfig, s2ta.DenseArray,
           "dense output-stationary systolic array of scalar MACs (optional ZVCG): baseline",
           host=gemm_hosts.DENSE.host()),
    Design("s2ta", s2ta.S2TAConfig, s2ta.S2TA,
           "S2TA systolic tensor array of tpe_rows x tpe_k x tpe_cols tensor PEs: variant "
           "dense (dense STA), w (weight DBB), a (compressed DBB activations, time-unrolled) "
           "or aw (both); a/aw with a DAP on the output path", host=gemm_hosts.S2TA.host()),
    Design("scnn-pe", scnn.ScnnPEConfig, scnn.ScnnPE,
           "SCNN PE: F x I Cartesian-product multipliers, scatter crossbar into A "
           "accumulator banks, halo ports, ReLU + RLE drain"),
    Design("scnn", scnn.ScnnConfig, scnn.Scnn,
           "SCNN array: planar-tiled PE grid, weight broadcast, hardware halo exchange "
           "(PT-IS-CP-sparse)", host=scnn_host.SCNN),
    Design("hss-mux", hss.HSSMuxConfig, hss.HSSMuxPE,
           "HighLight HSS PE: rank-1 groups skipped in time, rank-0 G0-of-H0 muxes, run-time "
           "pattern"),
    Design("gh-flat", hss.GHFlatConfig, hss.GHFlatPE,
           "flat multi-ratio G:H PE (one Hmax:1 mux per lane): HighLight's strawman"),
    Design("highlight", highlight.HighLightConfig, highlight.HighLight,
           "HighLight array of HSS PEs: any pattern of the set at run time, dense included",
           host=highlight_host.HIGHLIGHT.host()),
    Design("sod", sod.SodConfig, sod.Sod,
           "Sparse-on-Dense: bitmap decompressors at the edges of a dense systolic array "
           "(compressed storage, dense compute, any density)", host=sod_host.SOD.host()),
]}


def get_design(name: str) -> Design:
    """Look a design up by name; :class:`UsageError` lists the known ones."""
    try:
        return DESIGNS[name]
    except KeyError:
        raise UsageError(f"unknown design `{name}` (choose from {', '.join(DESIGNS)})") from None


def _parse_value(design: Design, spec: ParamSpec, raw):
    """Convert a command-line string (or a TOML value) to the parameter's type."""
    if not isinstance(raw, str):
        return raw                      # TOML already typed it; the config checks the type
    text = raw.strip()
    if spec.type is bool:
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise UsageError(f"{design.name}: parameter `{spec.name}` takes true/false/1/0, "
                         f"not {raw!r}")
    if spec.type is int:
        if not re.fullmatch(r"[+-]?[0-9]{1,30}", text):
            raise UsageError(f"{design.name}: parameter `{spec.name}` takes a decimal "
                             f"integer, not {raw!r}")
        return int(text)
    return text


#: Largest TOML file read (bytes): configs and sweep specs are a few lines; a mistaken path
#: (a binary, a device such as /dev/zero) is refused instead of read to the end.
MAX_TOML_BYTES = 1 << 20


def read_toml(path: Path, what: str) -> dict:
    """Load a TOML file; a missing, oversized, binary, non-UTF-8 or invalid one is one
    :class:`UsageError` line that calls it ``what`` (e.g. "config file")."""
    try:
        if path.is_dir():
            raise UsageError(f"cannot read {what} {path}: it is a folder")
        with open(path, "rb") as f:
            data = f.read(MAX_TOML_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_TOML_BYTES:
        raise UsageError(f"{what} {path} is larger than {MAX_TOML_BYTES >> 20} MiB: not a "
                         f"TOML {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {path} is not UTF-8 text (byte {exc.start}): not a TOML "
                         f"{what}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path} is not valid TOML: {exc}") from None


def _config_values(table: dict, path: Path) -> dict:
    """The parameters of a config file: its top-level keys, or its ``[params]`` table; a file
    with both (or a ``params`` key that is not a table) is ambiguous and refused."""
    if "params" not in table:
        return table
    params = table["params"]
    if not isinstance(params, Mapping):
        raise UsageError(f"config file {path}: `params` must be a table, not "
                         f"{type(params).__name__}")
    stray = [key for key in table if key != "params"]
    if stray:
        both = [key for key in stray if key in params]
        what = (f"`{both[0]}` is given both at the top level and in [params]" if both else
                f"`{stray[0]}` is at the top level beside a [params] table")
        raise UsageError(f"config file {path}: {what}; put every parameter in one place")
    return dict(params)


def parse_params(design: Design, assignments: list[str] = (),
                 config_file: Path | None = None) -> dict:
    """Merge ``-c`` TOML values and ``-p k=v`` strings (later wins) into typed values.

    The TOML file holds ``key = value`` pairs at top level or under a ``[params]`` table.
    """
    by_name = {spec.name: spec for spec in design.params}
    raw: dict = {}
    if config_file is not None:
        raw.update(_config_values(read_toml(config_file, "config file"), config_file))
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"-p expects key=value, not {item!r}")
        raw[key.strip()] = value
    values = {}
    for key, value in raw.items():
        if key not in by_name:
            raise UsageError(f"{design.name}: unknown parameter `{key}` "
                             f"(parameters: {', '.join(by_name)})")
        values[key] = _parse_value(design, by_name[key], value)
    return values


def make_config(design: Design, values: Mapping) -> Config:
    """Build and validate the design's config; bad values become :class:`UsageError`."""
    try:
        config = design.config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{design.name}: {exc}") from None
    return config


def refuse_unused(design: Design, config: Config, given) -> None:
    """Refuse a parameter the user gave that ``config`` ignores (``nnz_a`` in variant ``w``):
    one :class:`UsageError` saying why. Sweeps, which cross axes, do not call this."""
    unused = config.unused_params()
    for key in given:
        if key in unused:
            raise UsageError(f"{design.name}: parameter `{key}` has no effect here: "
                             f"{unused[key]}")
