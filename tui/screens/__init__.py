"""The screens and dialogs of the imgcache app, one module each."""
