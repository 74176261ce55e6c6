"""Data bundled with sitewatch: the demo sample (see demo/SOURCE.md)."""
