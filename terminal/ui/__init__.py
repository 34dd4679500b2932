"""The Qt application: main window, docks, dialogs. The only layer that wires widgets to services."""
