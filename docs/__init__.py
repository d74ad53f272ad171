"""Documentation generated from the program itself."""
