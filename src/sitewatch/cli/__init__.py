"""Command-line interface: one module per subcommand, thin over the library API."""

from sitewatch._threads import limit_blas_threads, limit_hugepage_advice, reuse_freed_memory

# Before numpy is imported (the submodules import it lazily): see sitewatch._threads.
limit_blas_threads()
limit_hugepage_advice()
reuse_freed_memory()
