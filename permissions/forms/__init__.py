"""Forms of the settings and login pages, one module a concern: they parse input; permissions.services acts."""
