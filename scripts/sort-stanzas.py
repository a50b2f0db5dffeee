"""Reads deb822 stanzas on stdin and prints them sorted, so two index files
with the same stanzas in a different order compare equal."""
import sys

stanzas = [s.strip("\n") for s in sys.stdin.read().split("\n\n") if s.strip()]
print("\n\n".join(sorted(stanzas)))
