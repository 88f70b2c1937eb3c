"""Write the bad-input files of the fuzz corpus (deterministic; rerun after changing it).

    .venv/bin/python tests/fuzz/make_corpus.py

Each file is something a user could hand sparsegen by mistake: binary or non-UTF-8 text where
TOML belongs, `.npy` files that are empty, truncated, pickled, of the wrong type or shape. (Broken
liberty archives are made by the test itself, in the folder its ``SPARSEGEN_PDK_DIR``
names.) ``cases.toml`` says what each run must print.
"""

import io
from pathlib import Path

import numpy as np

FILES = Path(__file__).resolve().parent / "files"


def npy_bytes(array, **kwargs) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, **kwargs)
    return buffer.getvalue()


def main():
    rng = np.random.default_rng(20261202)
    FILES.mkdir(exist_ok=True)
    noise = rng.integers(0, 256, 256, dtype=np.uint8).tobytes()
    good_a = npy_bytes(np.ones((4, 16), np.int8))
    files = {
        # TOML that is not
        "binary.toml": noise,
        "latin1.toml": "rows = 4\n# caf\xe9\n".encode("latin-1"),
        "invalid.toml": b"rows = = 4\n",
        "both.toml": b"rows = 4\n[params]\nrows = 8\n",
        "stray.toml": b"cols = 4\n[params]\nrows = 8\n",
        "params_not_table.toml": b"params = 3\n",
        "wrong_type.toml": b"rows = \"four\"\n",
        "float_for_int.toml": b"rows = 4.0\n",
        "bool_for_int.toml": b"rows = true\n",
        "list_for_int.toml": b"rows = [4, 8]\n",
        "huge_int.toml": b"rows = 123456789012345678901234567890\n",
        "unknown_key.toml": b"depth = 3\n",
        # .npy that is not, or not a tensor sim takes
        "empty.npy": b"",
        "noise.npy": noise,
        "truncated.npy": good_a[: len(good_a) - 10],
        "header_only.npy": good_a[:128],
        "pickled.npy": npy_bytes(np.array([{"a": 1}], dtype=object), allow_pickle=True),
        "float.npy": npy_bytes(np.ones((4, 16), np.float32)),
        "complex.npy": npy_bytes(np.ones((4, 16), np.complex64)),
        "bool.npy": npy_bytes(np.ones((4, 16), bool)),
        "too_wide.npy": npy_bytes(np.full((4, 16), 1000, np.int32)),
        "rank3.npy": npy_bytes(np.ones((2, 4, 16), np.int8)),
        "rank0.npy": npy_bytes(np.int8(3)),
        "zero_rows.npy": npy_bytes(np.ones((0, 16), np.int8)),
        "A.npy": good_a,
        "W.npy": npy_bytes(np.ones((16, 4), np.int8)),
        "W_short.npy": npy_bytes(np.ones((8, 4), np.int8)),
        "ifmap.npy": npy_bytes(np.ones((2, 5, 5), np.int8)),
        "filters.npy": npy_bytes(np.ones((2, 2, 3, 3), np.int8)),
        "filters_c3.npy": npy_bytes(np.ones((2, 3, 3, 3), np.int8)),
        "filters_big.npy": npy_bytes(np.ones((2, 2, 9, 9), np.int8)),
        # sweep specs
        "spec_workload_int.toml": b'design = "dense-array"\ntech = "generic"\nworkload = 3\n'
                                  b'[params]\nrows = [2, 4]\n',
        "spec_unknown_design.toml": b'design = "nope"\ntech = "generic"\n[params]\nrows = [2]\n',
        "spec_bad_tech.toml": b'design = "dense-array"\ntech = "tsmc3"\n[params]\nrows = [2]\n',
        "spec_bad_value.toml": b'design = "dense-array"\ntech = "generic"\n'
                               b'[params]\nrows = [2, 999]\n',
        "spec_no_design.toml": b'tech = "generic"\n[params]\nrows = [2]\n',
        "spec_ok.toml": b'design = "dense-array"\ntech = "generic"\n[params]\nrows = [2]\n',
        "spec_large.toml": (b'design = "dense-array"\ntech = "generic"\n[params]\n'
                            b'rows = [' + b", ".join(b"%d" % v for v in range(1, 22)) + b']\n'
                            b'cols = [' + b", ".join(b"%d" % v for v in range(1, 22)) + b']\n'),
    }
    for name, data in files.items():
        (FILES / name).write_bytes(data)
    print(f"wrote {len(files)} files into {FILES}")


if __name__ == "__main__":
    main()
