"""The catalog context's errors, each in one of the kernel's categories."""

from __future__ import annotations

from impextech.kernel.domain.errors import Conflict


class SkuTaken(Conflict):
    code = "sku-taken"
    title = "This SKU is already used in this marketplace"
