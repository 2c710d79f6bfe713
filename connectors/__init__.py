"""The connectors shipped with syncd, one package per system, each with its local fake."""
