"""Services hold the business rules; routes, CLI commands and screens stay thin."""
