"""The facility catalog, shipped inside the package as ``sitewatch.catalog``."""
