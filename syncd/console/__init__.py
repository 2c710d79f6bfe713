"""The operator's web console (issue #19): see syncd.console.app and syncd.console.server."""
