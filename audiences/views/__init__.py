"""The audiences app's pages, one concern a module: audiences, imports, profiles (with their settings)."""
