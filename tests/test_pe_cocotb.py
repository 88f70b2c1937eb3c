"""dense-pe and dbb-pe: the generated Verilog on Verilator (through cocotb) vs the golden model.

The cocotb tests at the top run inside the simulator; the pytest functions at the bottom
generate the Verilog for each config, build it once (keyed by its hash) and run them.

Coverage: the default configs cover BZ in {4, 8, 16}, NNZ in {1, 2, BZ/2, BZ}, data_width in
{4, 8, 16}, ZVCG on and off and accumulator wrap-around, pairwise; the full cross product is
marked slow.
"""

import itertools
import random

import cocotb
import numpy as np
import pytest

from sparsegen.sim.stimulus import pe_beats, pe_dot_products
from sparsegen.sim.tb.stream import TB

# -- inside the simulator ------------------------------------------------------------------


class PETB(TB):
    """A dot-product PE with a random-stall source on ``i`` and sink on ``o``."""

    def __init__(self, dut, *, idle_prob=0.0, stall_prob=0.0, seed=0):
        super().__init__(dut)
        rng = random.Random(seed)
        self.src = self.source("i", idle_prob=idle_prob, rng=rng)
        self.snk = self.sink("o", stall_prob=stall_prob, rng=rng)

    async def run_jobs(self, jobs):
        await self.start()
        cocotb.start_soon(self.snk.run(self))
        await self.src.send([beat for job in jobs for beat in pe_beats(job)], self)
        await self.snk.wait_for(len(jobs), timeout_cycles=100 + 50 * len(jobs))


@cocotb.test()
@cocotb.parametrize(
    backpressure=[(0.0, 0.0), (0.3, 0.5)],
    density=[0.9, 0.3],
)
async def pe_matches_golden(dut, backpressure, density):
    """Random dot products (1..6 blocks) with and without random stalls on both sides."""
    idle, stall = backpressure
    tb = PETB(dut, idle_prob=idle, stall_prob=stall, seed=int(density * 10))
    jobs = pe_dot_products(tb.config, np.random.default_rng(int(density * 100)), 40,
                           max_blocks=6, density=density)
    await tb.run_jobs(jobs)
    assert tb.snk.items == [job.expected for job in jobs]
    if tb.config["zvcg"]:
        assert int(dut.gated.value) == sum(job.gated for job in jobs)


@cocotb.test()
async def pe_latency_and_throughput(dut):
    """Without stalls, blocks go in every cycle and results leave LATENCY edges after."""
    tb = PETB(dut)
    jobs = pe_dot_products(tb.config, np.random.default_rng(5), 8, max_blocks=3)
    await tb.run_jobs(jobs)
    sent = tb.src.sent_cycles
    assert sent == list(range(sent[0], sent[0] + len(sent)))
    last_edges = list(itertools.accumulate(job.a.shape[0] for job in jobs))
    latency = [out - sent[i - 1] for out, i in zip(tb.snk.cycles, last_edges)]
    assert latency == [tb.meta["latency"]] * len(jobs)
    assert tb.snk.items == [job.expected for job in jobs]


@cocotb.test()
async def pe_extremes_wrap(dut):
    """Every operand at -2^(w-1): the largest products, so narrow accumulators wrap."""
    tb = PETB(dut)
    cfg = tb.config
    lo = -(1 << (cfg["data_width"] - 1))
    jobs = pe_dot_products(cfg, np.random.default_rng(9), 6, max_blocks=8, density=1.0)
    jobs = [_saturate(job, lo, cfg) for job in jobs]
    await tb.run_jobs(jobs)
    assert tb.snk.items == [job.expected for job in jobs]


def _saturate(job, lo, cfg):
    """The same job with every operand (dense weights, or every stored slot) set to lo."""
    from sparsegen.sim.golden import gemm as ggemm
    from sparsegen.sim.stimulus import DotProduct
    a = np.full_like(job.a, lo)
    if job.values is None:
        w = np.full_like(job.w, lo)
        return DotProduct(a, w, None, None, ggemm.dot_blocks(a, w, cfg["acc_width"]), 0)
    bz = cfg["block_size"]
    values = np.full_like(job.values, lo)
    # distinct indices per block, as a DBB encoder would produce them
    indices = np.tile(np.arange(job.values.shape[1]) % bz, (job.values.shape[0], 1))
    return DotProduct(a, job.w, values, indices,
                      ggemm.dbb_dot(a, values, indices, cfg["acc_width"]), 0)


# -- pytest runners ------------------------------------------------------------------------

DENSE_CONFIGS = [
    dict(block_size=4, data_width=4, zvcg=True),
    dict(block_size=4, data_width=16, acc_width=40),
    dict(block_size=8, data_width=8, zvcg=True),
    dict(block_size=8, data_width=4, acc_width=10),            # wraps
    dict(block_size=16, data_width=16, zvcg=True),
    dict(block_size=16, data_width=8, acc_width=16),           # wraps
]

DBB_CONFIGS = [
    dict(block_size=4, nnz=1, data_width=4),
    dict(block_size=4, nnz=2, data_width=8, zvcg=True),
    dict(block_size=4, nnz=4, data_width=16, acc_width=24),    # wraps
    dict(block_size=8, nnz=1, data_width=8, zvcg=True),
    dict(block_size=8, nnz=2, data_width=16),
    dict(block_size=8, nnz=4, data_width=4, zvcg=True),
    dict(block_size=8, nnz=8, data_width=8, acc_width=12),     # wraps
    dict(block_size=16, nnz=1, data_width=16, zvcg=True),
    dict(block_size=16, nnz=2, data_width=4, acc_width=8),     # wraps
    dict(block_size=16, nnz=8, data_width=8),
    dict(block_size=16, nnz=16, data_width=4, zvcg=True),
]


def _full_cross_product():
    for bz, width, zvcg in itertools.product((4, 8, 16), (4, 8, 16), (False, True)):
        yield "dense-pe", dict(block_size=bz, data_width=width, zvcg=zvcg)
        for nnz in sorted({1, 2, bz // 2, bz}):
            yield "dbb-pe", dict(block_size=bz, nnz=nnz, data_width=width, zvcg=zvcg)


def _id(params):
    return ",".join(f"{k}={v}" for k, v in params.items())


def run_pe(name, params):
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import get_design, make_config
    from sparsegen.sim.tb.runner import run
    design = get_design(name)
    run(generate(design, make_config(design, params)), test_module=__name__)


@pytest.mark.verilator
@pytest.mark.parametrize("params", DENSE_CONFIGS, ids=_id)
def test_dense_pe_verilator(params):
    run_pe("dense-pe", params)


@pytest.mark.verilator
@pytest.mark.parametrize("params", DBB_CONFIGS, ids=_id)
def test_dbb_pe_verilator(params):
    run_pe("dbb-pe", params)


@pytest.mark.slow
@pytest.mark.verilator
@pytest.mark.parametrize("name, params", list(_full_cross_product()),
                         ids=lambda x: x if isinstance(x, str) else _id(x))
def test_pe_verilator_full(name, params):
    run_pe(name, params)
