"""Platform pieces every package may use and that use no domain package."""
