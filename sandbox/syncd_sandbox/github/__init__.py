"""The local fake of GitHub (see syncd_sandbox)."""
