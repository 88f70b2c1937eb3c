"""The SRAM model (gen/sram.py): its liberty reader against values read by hand from the shipped
macro files, the fit through the three macros, and the rule for other sizes."""

import gzip
import math

import pytest

from sparsegen.gen.sram import (
    MACRO_DIR,
    parse_liberty,
    read_liberty_file,
    read_macros,
    sram_model,
)

# Read by hand: `zcat constraints/pdk/sky130_sram/*.lib.gz | grep -n
# "area\|cell_leakage_power\|word_width\|address_width\|values(\"[0-9.]*e+0"`.
# (name, words, bits, area um^2, leakage mW, clk internal energy pJ per edge)
BY_HAND = [
    ("sky130_sram_1kbyte_1rw1r_32x256_8", 256, 32, 190712.55, 0.009516, 9.589466),
    ("sky130_sram_1kbyte_1rw1r_8x1024_8", 1024, 8, 203273.238, 0.009517, 9.389093),
    ("sky130_sram_2kbyte_1rw1r_32x512_8", 512, 32, 284538.474, 0.017726, 13.8084),
]


def test_the_reader_gives_the_hand_read_values():
    macros = read_macros()
    assert [m.name for m in macros] == [row[0] for row in BY_HAND]
    for macro, (name, words, bits, area, leak_mw, edge_pj) in zip(macros, BY_HAND):
        assert (macro.words, macro.bits) == (words, bits), name
        assert macro.area_um2 == area
        assert macro.leakage_w == pytest.approx(leak_mw * 1e-3, rel=1e-12)
        assert macro.clock_energy_pj == {"clk0": (edge_pj, edge_pj), "clk1": (edge_pj, edge_pj)}
        assert macro.access_pj == pytest.approx(2 * edge_pj)


def test_the_reader_takes_plain_and_gzipped_files_alike(tmp_path):
    source = sorted(MACRO_DIR.glob("*.lib.gz"))[0]
    plain = tmp_path / source.stem
    plain.write_bytes(gzip.decompress(source.read_bytes()))
    assert read_liberty_file(plain) == read_liberty_file(source)


def test_the_parser_reads_groups_attributes_comments_and_continuations():
    library = parse_liberty("""
        /* a comment { with braces } */
        library (lib) {
          leakage_power_unit : "1mW" ;
          capacitive_load_unit(1, pF) ;
          cell ("c1") {
            area : 12.5 ;
            pin(clk) { clock : true;
              internal_power() { when : "!a & b"; rise_power(scalar) { values("1.5, \\
                2.5"); } }
            }
          }
        }""")
    assert library.args == ["lib"] and library.attrs["leakage_power_unit"] == "1mW"
    assert library.attrs["capacitive_load_unit"] == ["1", "pF"]
    (cell,) = library.find("cell")
    assert cell.args == ["c1"] and cell.number("area") == 12.5
    (power,) = cell.find("pin", "clk")[0].find("internal_power")
    assert power.attrs["when"] == "!a & b"
    values = power.find("rise_power")[0].attrs["values"]
    assert [v.replace(" ", "") for v in values] == ["1.5,2.5"]      # the continuation joined


@pytest.mark.parametrize("text, message", [
    ("library (x) { a : 1; ", "unclosed"),
    ("library (x) { } }", "unbalanced"),
    ("library (x) { a : ; }", "has no value"),
    ("cell (x) { }", "one `library`"),
])
def test_the_parser_refuses_broken_text(text, message):
    with pytest.raises(ValueError, match=message):
        parse_liberty(text)


def test_the_model_goes_through_the_three_macros():
    model = sram_model()
    for name, words, bits, area, leak_mw, edge_pj in BY_HAND:
        est = model.estimate(words, bits)
        assert est.pieces == (1, 1), name
        assert est.area_um2 == pytest.approx(area, rel=1e-9)
        assert est.read_pj == est.write_pj == pytest.approx(2 * edge_pj, rel=1e-6)
        assert est.leakage_w == pytest.approx(leak_mw * 1e-3, rel=1e-6)
    a_bit, a_word, a_0 = model.area
    assert (round(a_bit, 3), round(a_word, 3), round(a_0, 1)) == (10.942, 16.355, 96886.6)


def test_without_the_words_term_the_fit_misses_by_3_percent():
    """The error the words term removes (module doc): least squares area = a * bits + c."""
    points = [(w * b, area) for _, w, b, area, _, _ in BY_HAND]
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    slope = (sum((x - mx) * (y - my) for x, y in points)
             / sum((x - mx) ** 2 for x, _ in points))
    misses = [abs(y - (my + slope * (x - mx))) / y for x, y in points]
    assert max(misses) == pytest.approx(0.0329, abs=0.0005)


def test_other_sizes_follow_the_tiling_rule():
    model = sram_model()
    small = model.estimate(16, 32)           # one piece: the periphery dominates
    assert small.pieces == (1, 1) and 96886 < small.area_um2 < 190712.55
    wide = model.estimate(128, 128)          # four 32-bit columns, all read at once
    piece = model.estimate(128, 32)
    assert wide.pieces == (1, 4)
    assert wide.area_um2 == pytest.approx(4 * piece.area_um2)
    assert wide.read_pj == pytest.approx(4 * piece.read_pj)
    deep = model.estimate(4096, 8)           # four banks, one read at a time
    assert deep.pieces == (4, 1) and deep.piece_words == 1024
    assert deep.read_pj == pytest.approx(model.estimate(1024, 8).read_pj)
    assert deep.leakage_w == pytest.approx(4 * model.estimate(1024, 8).leakage_w)
    odd = model.estimate(1000, 40)           # two 20-bit columns of 1000 words
    assert (odd.pieces, odd.piece_words, odd.piece_bits) == ((1, 2), 1000, 20)
    assert math.isfinite(odd.area_um2)


@pytest.mark.parametrize("words, bits, error, message", [
    (0, 8, ValueError, "`words` must be at least 1, not 0"),
    (16, -1, ValueError, "`bits` must be at least 1, not -1"),
    (16.0, 8, TypeError, "`words` must be an integer, not 16.0"),
    (16, True, TypeError, "`bits` must be an integer, not True"),
])
def test_bad_sizes_are_refused(words, bits, error, message):
    with pytest.raises(error, match=message):
        sram_model().estimate(words, bits)


# -- SRAM macros: the hw declaration (hw/sram.py) and synthesis (gen/synth.py) ------------------

#: Flip-flop memory area per bit on sky130hd, measured: SCNN's 32 x 44 activation buffer (1,408
#: bits with its read multiplexer) synthesized to 55,545.8 um^2 (sparsegen synth scnn-pe, the
#: ``act_buffer`` module, before it was a SyncMemory).
FLOP_UM2_PER_BIT = 55545.7728 / 1408


def test_macro_threshold_is_where_the_model_beats_flip_flops():
    from sparsegen.hw.sram import MACRO_MIN_BITS
    model = sram_model()
    for words, bits in ((128, 32), (256, 16), (512, 8)):
        assert words * bits == MACRO_MIN_BITS
        assert model.estimate(words, bits).area_um2 < FLOP_UM2_PER_BIT * MACRO_MIN_BITS
    # Half the threshold is flip-flops' ground: the fixed periphery dominates there.
    assert model.estimate(64, 32).area_um2 > FLOP_UM2_PER_BIT * 64 * 32


def _scnn_pe_verilog(act_depth):
    from sparsegen.gen.generate import generate
    from sparsegen.gen.registry import get_design
    from sparsegen.hw.scnn import ScnnPEConfig
    config = ScnnPEConfig(f=1, i=1, banks=4, kc=1, max_tile_w=2, max_tile_h=2, max_r=2,
                          max_s=2, bank_depth=3, act_depth=act_depth, data_width=8,
                          acc_width=16)
    return generate(get_design("scnn-pe"), config)


#: Banks of each of scnn-pe's two activation RAMs here (hw.scnn.ram_banks: i = 1, 2-wide tiles).
ACT_BANKS = 4


def test_large_memories_become_macro_shells():
    """scnn-pe's activation RAM rows are 12 bits here (8-bit value, 4-bit frame offset), in
    banks of a quarter of ``act_depth``: banks of 341 rows (4,092 bits) stay flip-flops, of 342
    rows (4,104 bits) are ``sram_1r1w_342x12`` macros (one module for the eight), whose shell
    registers its inputs and drives r_data from a register."""
    from sparsegen.gen.synth import macro_shells
    from sparsegen.hw.scnn import ScnnPEConfig, ram_banks
    assert ram_banks(ScnnPEConfig(f=1, i=1, banks=4, max_tile_w=2, max_tile_h=2)) == ACT_BANKS
    assert macro_shells(_scnn_pe_verilog(341 * ACT_BANKS).verilog)[1] == {}
    generated = _scnn_pe_verilog(342 * ACT_BANKS)
    shelled, macros = macro_shells(generated.verilog)
    assert macros == {"scnn_pe.sram_1r1w_342x12": (342, 12)}
    assert "reg [11:0] mem [341:0]" in generated.verilog        # the functional model
    assert "reg [11:0] mem [341:0]" not in shelled
    shell = shelled[shelled.index("module \\scnn_pe.sram_1r1w_342x12"):]
    shell = shell[:shell.index("endmodule")]
    for decl in ("input [8:0] r_addr;", "input r_en;", "output [11:0] r_data;",
                 "input [8:0] w_addr;", "input w_en;", "input [11:0] w_data;", "input clk;"):
        assert decl in shell, decl
    assert "sparsegen_shell_w_data <= w_data;" in shell
    assert "assign r_data = sparsegen_shell_out;" in shell


@pytest.mark.synth
@pytest.mark.slow
def test_macro_area_is_reported_apart(tmp_path, monkeypatch):
    """sky130hd: the macro's area is the model's, the logic area excludes its shell (the
    mapped total minus the shell module), and a tech the model does not cover reports None."""
    from sparsegen.gen.synth import synthesize
    monkeypatch.setenv("SPARSEGEN_CACHE_DIR", str(tmp_path))
    generated = _scnn_pe_verilog(342 * ACT_BANKS)
    result = synthesize(generated.verilog, generated.top, "sky130hd")
    # Two activation RAMs (IARAM, OARAM) of ACT_BANKS macros each.
    assert result.sram_area_um2 == pytest.approx(
        2 * ACT_BANKS * sram_model().estimate(342, 12).area_um2)
    macro = result.modules["scnn_pe.sram_1r1w_342x12"]
    assert (macro["area_um2"], macro["cells"], macro["macro"]["words"]) == (0.0, 0, 342)
    logic = sum(m["area_um2"] * m["instances"] for m in result.modules.values())
    assert result.area_um2 == pytest.approx(logic, rel=1e-9)
    assert synthesize(generated.verilog, generated.top, "generic").sram_area_um2 is None
