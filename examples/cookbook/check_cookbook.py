#!/usr/bin/env python3
"""Checks that docs/cookbook.md reproduces its recipes exactly: each
`<!-- file: PATH -->` marker is followed by a fenced block equal to PATH's
content, and every recipe under examples/cookbook/ (not test/) is included.
Usage: check_cookbook.py ROOT. Prints one line per recipe; exit 1 on a mismatch."""
import os
import re
import sys

root = sys.argv[1]
doc = open(os.path.join(root, "docs/cookbook.md")).read()
found, bad = set(), 0
for path, body in re.findall(r"<!-- file: (\S+) -->\n```[a-z]*\n(.*?)```\n", doc, re.S):
    found.add(path)
    same = open(os.path.join(root, path)).read() == body
    bad += not same
    print(("ok   " if same else "DIFF ") + path)
recipes = set()
for d, dirs, files in os.walk(os.path.join(root, "examples/cookbook")):
    dirs[:] = [x for x in dirs if x != "test"]
    for f in files:
        if f.endswith((".lua", ".c")) and f != "conf.lua":
            recipes.add(os.path.relpath(os.path.join(d, f), root))
for missing in sorted(recipes - found):
    bad += 1
    print("MISSING " + missing)
sys.exit(1 if bad or not found else 0)
