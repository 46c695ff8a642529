"""The admin dashboard's static files (HTML, CSS, script, the vendored uPlot), served at /ui by server/ui_routes.py."""
