"""The `esms` admin command line."""
