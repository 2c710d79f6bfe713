"""The local fake of HubSpot (see syncd_sandbox)."""
