#!/usr/bin/env python3
"""Compare warpd's built-in NANP area-code table (crates/core/src/numbering/nanp_countries.rs)
with Google's libphonenumber metadata, as shipped by the `phonenumbers` package from PyPI.

    pip install phonenumbers && python3 scripts/check-nanp-table.py

Prints every NPA (200-999) whose country differs and exits 1 if any does. A maintenance tool,
not part of the test suite (the suite needs no PyPI package)."""
import pathlib
import re
import sys

import phonenumbers

TABLE = pathlib.Path(__file__).resolve().parent.parent / "crates/core/src/numbering/nanp_countries.rs"
ENTRY = re.compile(r'\((\d{3}), "([A-Z]{2})", NanpRegion::(\w+)\)')


def libphonenumber_regions(npa):
    """The countries libphonenumber gives numbers in this NPA (several NXX/line samples)."""
    found = set()
    for nxx in ("200", "234", "301", "312", "456", "502", "555", "678", "710", "789", "890", "915"):
        for line in ("0000", "1234", "5678"):
            region = phonenumbers.region_code_for_number(phonenumbers.parse(f"+1{npa}{nxx}{line}"))
            if region:
                found.add(region)
    if len(found) > 1:
        found.discard("US")  # unassigned exchanges fall back to the main country
    return found


def main():
    ours = {int(m[1]): m[2] for m in ENTRY.finditer(TABLE.read_text())}
    diffs = []
    for npa in range(200, 1000):
        theirs = libphonenumber_regions(npa)
        mine = ours.get(npa, "US")
        if theirs and mine not in theirs:
            diffs.append(f"{npa}: warpd {mine}, libphonenumber {sorted(theirs)}")
    print(f"phonenumbers {phonenumbers.__version__}: {len(ours)} non-US entries, {len(diffs)} differences")
    for d in diffs:
        print(d)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
