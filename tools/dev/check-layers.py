#!/usr/bin/env python3
"""Check the layering of src/ (docs/ARCHITECTURE.md, "Layers").

    tools/dev/check-layers.py [--graph]

A module is src/<layer>/<name>.c with src/<layer>/<name>.h. The layers, from
the bottom up, are the folders in LAYERS. internal.h, layout.h and
objects.h at the top of src/ are the shared vocabulary: no layer, usable by
all. Rules, each a failure when broken:

  1. A module includes only module headers of its own layer or below.
  2. No cycle between modules, following the #include of module headers
     and the calls between modules.
  3. A module calls only functions (shl_ and shl__) defined in modules of
     its own layer or below, whichever header declared them (the public
     header declares the API, so includes alone would not show a call up).
  4. Each module header declares only functions its own module defines
     (static inline definitions in the header count as its own).
  5. No .c file in src/ or tools/ is longer than MAX_LINES lines.

--graph prints the module graph (layer, module, what it includes).
Exit status: 0 clean, 1 violations (each printed), 2 usage.
"""
import os
import re
import sys

LAYERS = ["base", "shm", "files", "crash", "session", "process"]
VOCABULARY = {"internal.h", "layout.h", "objects.h"}
MAX_LINES = 1000

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SRC = os.path.join(ROOT, "src")

INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
# A function definition at column 0 (return type on the line before, as the
# house style has it, or on the same line).
DEF_RE = re.compile(r"^(?:[A-Za-z_][\w \*]*?[\s\*])?(shl__?\w+)\s*\(([^;{]*?)\)\s*\{",
                    re.M | re.S)
DECL_RE = re.compile(r"^(?:[A-Za-z_][\w \*\(]*?[\s\*])?(shl__?\w+)\s*\([^;{]*?\)"
                     r"(?:\s*__attribute__\s*\(\(.*?\)\))?\s*;", re.M | re.S)
INLINE_RE = re.compile(r"^static inline[^\n]*\n?(?:[^\n(]*?)(shl__?\w+)\s*\(",
                       re.M)
CALL_RE = re.compile(r"\b(shl__?\w+)\s*\(")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"),
                  text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def module_of(rel):
    """('shm', 'shm/segment') for 'shm/segment.c'; None for vocabulary."""
    if rel in VOCABULARY:
        return None
    parts = rel.split("/")
    if len(parts) != 2 or parts[0] not in LAYERS:
        return "?"
    return parts[0], rel.rsplit(".", 1)[0]


def main():
    graph_only = "--graph" in sys.argv[1:]
    if any(a not in ("--graph",) for a in sys.argv[1:]):
        print(__doc__)
        return 2
    files = {}
    for dirpath, _, names in os.walk(SRC):
        for n in names:
            if n.endswith((".c", ".h")):
                p = os.path.join(dirpath, n)
                files[os.path.relpath(p, SRC)] = open(p, encoding="utf-8").read()

    errors = []
    modules = {}  # module -> layer
    for rel in files:
        m = module_of(rel)
        if m == "?":
            errors.append(f"src/{rel}: not in a layer folder ({', '.join(LAYERS)})"
                          " nor shared vocabulary")
        elif m:
            modules[m[1]] = m[0]

    def layer_index(mod):
        return LAYERS.index(modules[mod])

    # defined functions -> module
    defined = {}
    for rel, text in files.items():
        m = module_of(rel)
        if not m or m == "?":
            continue
        clean = strip_comments(text)
        pat = DEF_RE if rel.endswith(".c") else INLINE_RE
        for fm in pat.finditer(clean):
            defined.setdefault(fm.group(1), m[1])

    # 1 + 2: includes
    edges = {mod: set() for mod in modules}
    for rel, text in sorted(files.items()):
        m = module_of(rel)
        if not m or m == "?":
            continue
        for inc in INCLUDE_RE.findall(text):
            if inc in VOCABULARY or inc.startswith("shmledger/"):
                continue
            target = module_of(inc)
            if target in (None, "?") or target[1] not in modules:
                errors.append(f"src/{rel}: includes \"{inc}\", which is not a "
                              "module header (write it as <layer>/<name>.h)")
                continue
            if target[1] == m[1]:
                continue
            edges[m[1]].add(target[1])
            if layer_index(target[1]) > layer_index(m[1]):
                errors.append(f"src/{rel}: includes {inc}: layer "
                              f"'{target[0]}' is above '{m[0]}'")

    # every module this one calls, for the cycle search below
    cycle_edges = {mod: set(deps) for mod, deps in edges.items()}
    # 3: calls
    for rel, text in sorted(files.items()):
        m = module_of(rel)
        if not m or m == "?" or not rel.endswith(".c"):
            continue
        clean = strip_comments(text)
        seen = set()
        for fn in CALL_RE.findall(clean):
            owner = defined.get(fn)
            if not owner or owner == m[1] or fn in seen:
                continue
            seen.add(fn)
            cycle_edges[m[1]].add(owner)
            if layer_index(owner) > layer_index(m[1]):
                errors.append(f"src/{rel}: calls {fn}() of {owner} "
                              f"(layer '{modules[owner]}' is above '{m[0]}')")

    # cycles (Tarjan's strongly connected components)
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in cycle_edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(cycle_edges):
        if v not in index:
            strong(v)
    for comp in sccs:
        errors.append("module cycle: " + " <-> ".join(comp))

    # 4: declarations belong to their module
    for rel, text in sorted(files.items()):
        m = module_of(rel)
        if not m or m == "?" or not rel.endswith(".h"):
            continue
        clean = strip_comments(text)
        for fm in DECL_RE.finditer(clean):
            fn = fm.group(1)
            owner = defined.get(fn)
            if owner is None:
                errors.append(f"src/{rel}: declares {fn}(), defined nowhere")
            elif owner != m[1]:
                errors.append(f"src/{rel}: declares {fn}(), defined in "
                              f"{owner}.c")

    # 5: file length
    for top in ("src", "tools"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for n in names:
                if n.endswith(".c"):
                    p = os.path.join(dirpath, n)
                    with open(p, encoding="utf-8") as f:
                        count = sum(1 for _ in f)
                    if count > MAX_LINES:
                        errors.append(f"{os.path.relpath(p, ROOT)}: {count} "
                                      f"lines (at most {MAX_LINES})")

    if graph_only:
        for mod in sorted(modules, key=lambda x: (layer_index(x), x)):
            deps = ", ".join(sorted(edges[mod])) or "-"
            print(f"{modules[mod]:8} {mod:22} -> {deps}")
    for e in errors:
        print("layering: " + e)
    print(f"layering: {len(modules)} modules in {len(LAYERS)} layers, "
          f"{sum(len(v) for v in edges.values())} include edges, "
          f"{len(sccs)} cycles, {len(errors)} violations")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
