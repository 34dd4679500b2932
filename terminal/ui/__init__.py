"""The Qt application: main window, docks, dialogs; the layer that wires widgets to services."""
