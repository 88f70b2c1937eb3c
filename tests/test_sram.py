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
