"""ROOT files in the workspace: what they hold (trees, entries, branches), for the file browser's viewer."""
