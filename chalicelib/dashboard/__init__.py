"""The dashboard's static files (HTML, CSS, ES modules), served by chalicelib/entrypoints/dashboard.py."""
