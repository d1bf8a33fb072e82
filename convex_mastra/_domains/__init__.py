"""The storage domains: one module per kind of record, each on the shared dispatcher.

Each module reads as the spec of its operations. How a call travels (HTTP, retries, timeouts)
lives in ``_transport``; which handler answers and how rows are paged lives in ``_dispatch``
and ``_paging``.
"""
