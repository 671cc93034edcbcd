"""A job that crashes hard (a segfault): no exit code of its own, nothing it can report."""

import ctypes
import faulthandler

faulthandler.disable()
print("about to crash", flush=True)
ctypes.string_at(0)
