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
           "make_config"]


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
           "S2TA systolic tensor array: variant w (weight DBB), a (activation DBB, "
           "time-unrolled) or aw (both)", host=gemm_hosts.S2TA.host()),
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
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise UsageError(f"{design.name}: parameter `{spec.name}` takes true/false/1/0, "
                         f"not {raw!r}")
    if spec.type is int:
        try:
            return int(text, 0)
        except ValueError:
            raise UsageError(f"{design.name}: parameter `{spec.name}` takes an integer, "
                             f"not {raw!r}") from None
    return text


def read_toml(path: Path, what: str) -> dict:
    """Load a TOML file; an unreadable or invalid one is one :class:`UsageError` line that
    calls it ``what`` (e.g. "config file")."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{what} {path} is not valid TOML: {exc}") from None


def parse_params(design: Design, assignments: list[str] = (),
                 config_file: Path | None = None) -> dict:
    """Merge ``-c`` TOML values and ``-p k=v`` strings (later wins) into typed values.

    The TOML file holds ``key = value`` pairs at top level or under a ``[params]`` table.
    """
    by_name = {spec.name: spec for spec in design.params}
    raw: dict = {}
    if config_file is not None:
        table = read_toml(config_file, "config file")
        raw.update(table.get("params", table) if isinstance(table.get("params"), Mapping)
                   else table)
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
        return design.config_cls(**values)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{design.name}: {exc}") from None
