"""Case templates (YAML data files, one per incident type); see cases.services.templates."""
