"""go-bexpr filter expressions as Nomad evaluates ``?filter=`` on ``GET /v1/allocations``.

Owns the public API: ``compile_filter`` (parse once, raising FilterSyntaxError) and
``Filter.matches`` (evaluate against a JSON Allocation, raising FilterFieldError).  Every
``FilterError.message`` is the exact text Nomad puts in the HTTP error body after its own
``failed to create result paginator: `` / ``failed to read result page: `` prefix.
"""

from __future__ import annotations

from .bexpr import (
    NOMAD_ALLOCATION_TYPES as NOMAD_ALLOCATION_TYPES,
    SYNTAX_ERROR_PREFIX as SYNTAX_ERROR_PREFIX,
    Filter as Filter,
    FilterError as FilterError,
    FilterFieldError as FilterFieldError,
    FilterSyntaxError as FilterSyntaxError,
    GoTypes as GoTypes,
    compile_filter as compile_filter,
)

__all__ = [
    "NOMAD_ALLOCATION_TYPES",
    "SYNTAX_ERROR_PREFIX",
    "Filter",
    "FilterError",
    "FilterFieldError",
    "FilterSyntaxError",
    "GoTypes",
    "compile_filter",
]
