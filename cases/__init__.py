"""Case system: the store, services (alerts, incidents, cases, audit), sharing and search."""
