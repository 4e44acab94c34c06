"""The ctypes structures against the C compiler's view of the header:
every field's offset and every struct's size. Skipped when no C compiler
or no header is found (pkg-config --cflags shmledger, or
SHMLEDGER_INCLUDE)."""
import ctypes
import os
import shutil
import subprocess
import tempfile
import unittest

from shmledger import _lib

STRUCTS = {
    "shl_ledger_callbacks": _lib.LedgerCallbacks,
    "shl_ledger_opts": _lib.LedgerOpts,
    "shl_call_callbacks": _lib.CallCallbacks,
    "shl_call_opts": _lib.CallOpts,
    "shl_failed_info": _lib.FailedInfo,
}


def _cflags():
    inc = os.environ.get("SHMLEDGER_INCLUDE")
    if inc:
        return [f"-I{inc}"]
    try:
        out = subprocess.run(["pkg-config", "--cflags", "shmledger"], capture_output=True,
                             text=True, check=True).stdout.split()
        return out
    except (OSError, subprocess.CalledProcessError):
        return None


class LayoutTest(unittest.TestCase):
    def test_offsets_and_sizes_match_the_header(self):
        cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
        flags = _cflags()
        if not cc or flags is None:
            self.skipTest("no C compiler or no shmledger header")
        lines = ['#include <stdio.h>', '#include <stddef.h>',
                 '#include <shmledger/shmledger.h>', 'int main(void) {']
        expect = []
        for cname, py in STRUCTS.items():
            lines.append(f'printf("%zu\\n", sizeof({cname}));')
            expect.append((f"sizeof {cname}", ctypes.sizeof(py)))
            for fname, *_ in py._fields_:
                lines.append(f'printf("%zu\\n", offsetof({cname}, {fname}));')
                expect.append((f"{cname}.{fname}", getattr(py, fname).offset))
        lines += ['return 0;', '}']
        with tempfile.TemporaryDirectory() as d:
            src = os.path.join(d, "layout.c")
            exe = os.path.join(d, "layout")
            with open(src, "w") as f:
                f.write("\n".join(lines) + "\n")
            subprocess.run([cc, "-std=c11", *flags, src, "-o", exe], check=True)
            got = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
        self.assertEqual(len(got), len(expect))
        for (what, want), value in zip(expect, got):
            self.assertEqual(int(value), want, what)

    def test_defaults_filled_by_the_library(self):
        _lib.check_layout()  # also run at import; raises on a mismatch


if __name__ == "__main__":
    unittest.main()
