"""The local fake SMTP server (see syncd_sandbox)."""
