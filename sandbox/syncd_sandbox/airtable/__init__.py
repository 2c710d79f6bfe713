"""The local fake of Airtable (see syncd_sandbox)."""
