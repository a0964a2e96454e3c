"""The forms of the audiences app's pages, one module per views module."""
