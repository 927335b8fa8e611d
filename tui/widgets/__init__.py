"""The widgets of the imgcache app: one module per widget, messages nested in their sender."""
