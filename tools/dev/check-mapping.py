#!/usr/bin/env python3
"""Check docs/mapping.md against the public header.

    tools/dev/check-mapping.py [ROOT]

Every table row of docs/mapping.md has three cells: the Dart member, its C
counterpart, notes. Rules, each a failure when broken:

  1. Every shl_* / SHL_* name in the C cell is declared in
     include/shmledger/shmledger.h (a function, type, macro or enum
     constant: the name must occur there as a whole word).
  2. A C cell without such a name ("-", an errno value...) has notes that
     say why (not empty).
  3. The Dart cells are unique within a section (## heading), and there
     are rows.

Exit status: 0 clean, 1 violations (each printed), 2 usage.
"""
import os
import re
import sys


def main():
    args = sys.argv[1:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        print(__doc__)
        return 2
    root = args[0] if args else os.path.join(os.path.dirname(__file__),
                                             "..", "..")
    md = os.path.join(root, "docs", "mapping.md")
    hdr = os.path.join(root, "include", "shmledger", "shmledger.h")
    header = open(hdr, encoding="utf-8").read()
    words = set(re.findall(r"\b[A-Za-z_]\w*\b", header))
    errors = []
    seen = {}
    rows = 0
    section = ""
    for n, line in enumerate(open(md, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("## "):
            section = line[3:].strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3:
            errors.append(f"docs/mapping.md:{n}: expected 3 cells, got "
                          f"{len(cells)}")
            continue
        dart, c, notes = cells
        if dart in ("Dart", "---") or set(dart) <= set("-"):
            continue
        rows += 1
        key = (section, dart)
        if key in seen:
            errors.append(f"docs/mapping.md:{n}: {dart} listed twice in "
                          f"{section} (line {seen[key]})")
        seen[key] = n
        names = re.findall(r"\b(?:shl|SHL)_\w+", c)
        for name in names:
            if name not in words:
                errors.append(f"docs/mapping.md:{n}: {name} (for {dart}) is "
                              f"not in include/shmledger/shmledger.h")
        if not names and not notes:
            errors.append(f"docs/mapping.md:{n}: {dart} has no C "
                          f"counterpart and no reason")
    if rows == 0:
        errors.append("docs/mapping.md: no table rows")
    for e in errors:
        print(e)
    print(f"mapping: {rows} members, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
