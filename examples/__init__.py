"""The example canvases, installed with the package: `daytonaflow ui` offers them as new-canvas templates."""
